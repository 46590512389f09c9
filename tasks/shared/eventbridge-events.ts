import { z } from 'zod';

/**
 * The two EventBridge events notify receives, as AWS documents them (EventBridge reference
 * "Step Functions Execution Status Change"; CodeBuild "Build notifications input format
 * reference"). Only the fields notify reads are checked; the rest passes through.
 */

export const executionStatusChangeSchema = z.looseObject({
  'detail-type': z.literal('Step Functions Execution Status Change'),
  time: z.string().optional(),
  detail: z.looseObject({
    executionArn: z.string(),
    stateMachineArn: z.string(),
    name: z.string(),
    status: z.enum(['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE']),
    startDate: z.number(),
    stopDate: z.number().nullish(),
    /** JSON text; absent when too large to include (inputDetails.included = false). */
    input: z.string().nullish(),
    /** JSON text, only for SUCCEEDED. */
    output: z.string().nullish(),
    error: z.string().nullish(),
    cause: z.string().nullish(),
    redriveCount: z.number().nullish(),
  }),
});

export const buildStateChangeSchema = z.looseObject({
  'detail-type': z.literal('CodeBuild Build State Change'),
  time: z.string(),
  detail: z.looseObject({
    'build-status': z.string(),
    'project-name': z.string(),
    'build-id': z.string(),
    'additional-information': z
      .looseObject({
        environment: z
          .looseObject({
            'environment-variables': z
              .array(z.looseObject({ name: z.string(), value: z.string(), type: z.string().optional() }))
              .default([]),
          })
          .optional(),
        'build-start-time': z.string().optional(),
        logs: z.looseObject({ 'deep-link': z.string().optional() }).optional(),
        phases: z
          .array(
            z.looseObject({
              'phase-type': z.string(),
              'phase-status': z.string().optional(),
              'phase-context': z.array(z.string()).optional(),
            }),
          )
          .default([]),
      })
      .default({ phases: [] }),
  }),
});

export const notifyEventSchema = z.discriminatedUnion('detail-type', [
  executionStatusChangeSchema,
  buildStateChangeSchema,
]);

export type ExecutionStatusChange = z.infer<typeof executionStatusChangeSchema>;
export type BuildStateChange = z.infer<typeof buildStateChangeSchema>;
export type NotifyEvent = z.infer<typeof notifyEventSchema>;
