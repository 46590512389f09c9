/**
 * A failed state's cause in words: a Lambda error's `errorMessage`, a failed build's status, phase
 * and phase message; any other cause as it is. Shared by the CLI and the Slack notifier, which
 * both show the cause Step Functions recorded (a JSON document for Lambda and CodeBuild tasks).
 */
export function describeCause(cause: string | undefined): string {
  if (!cause) return '';
  try {
    const parsed = JSON.parse(cause) as {
      errorMessage?: string;
      Build?: {
        BuildStatus?: string;
        CurrentPhase?: string;
        Phases?: Array<{ PhaseType?: string; PhaseStatus?: string; Contexts?: Array<{ Message?: string }> }>;
      };
    };
    if (parsed.errorMessage) return parsed.errorMessage;
    const build = parsed.Build;
    if (build) {
      const failed = build.Phases?.find((p) => p.PhaseStatus && p.PhaseStatus !== 'SUCCEEDED');
      const message = failed?.Contexts?.map((c) => c.Message)
        .filter(Boolean)
        .join('; ');
      return `build ${build.BuildStatus ?? ''}${failed ? ` in ${failed.PhaseType}` : ''}${message ? `: ${message}` : ''}`;
    }
  } catch {
    // not JSON: shown as it is
  }
  return cause;
}
