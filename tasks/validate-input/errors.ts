/** The execution input breaks the input contract or the environment's branch policy: never retried. */
export class InvalidInputError extends Error {
  /** One line per problem, `<field>: <value> <rule>`, for callers that show them separately. */
  readonly problems: ReadonlyArray<string>;

  constructor(problems: ReadonlyArray<string>, options?: ErrorOptions) {
    super(`the execution input is invalid:\n${problems.map((p) => `  ${p}`).join('\n')}`, options);
    this.name = 'InvalidInputError';
    this.problems = problems;
  }
}
