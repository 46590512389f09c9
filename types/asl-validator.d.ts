// asl-validator 4 ships no type declarations.
declare module 'asl-validator' {
  interface ValidationError {
    readonly 'Error code': string;
    readonly Message: string;
  }
  interface ValidationOptions {
    readonly checkPaths?: boolean;
    readonly checkArn?: boolean;
  }
  function aslValidator(
    definition: unknown,
    options?: ValidationOptions,
  ): { isValid: boolean; errors: ValidationError[] };
  export = aslValidator;
}
