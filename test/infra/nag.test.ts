import { App, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { makeStack } from './fixtures';

/** A fresh app with the AwsSolutions pack, bundling skipped: cdk-nag reads the template, not the bundles. */
function checkedApp(): App {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return app;
}

function acknowledgementsIn(root: IConstruct): Array<{ path: string; id: string; reason: string }> {
  return root.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) => Object.entries(m.data as Record<string, string>))
      .map(([id, reason]) => ({ path: c.node.path, id, reason })),
  );
}

describe('cdk-nag AwsSolutions', () => {
  test('the example pipeline has no unacknowledged finding', () => {
    const app = checkedApp();
    makeStack({ app });
    expect(() => app.synth()).not.toThrow();
  });

  test('every acknowledgement names a specific finding and gives a reason', () => {
    const app = checkedApp();
    const { stack } = makeStack({ app });
    const acks = acknowledgementsIn(stack);
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      // Validations records an id without a plugin prefix under "Annotation::"; cdk-nag matches either.
      expect(ack.id).toMatch(/^(\w+::)?AwsSolutions-[A-Z]+\d+(\[.+\])?$/);
      expect(ack.reason.length).toBeGreaterThan(40);
    }
    // Wildcard findings are acknowledged one resource at a time, never as a blanket IAM5.
    expect(acks.filter((a) => /(^|::)AwsSolutions-IAM5$/.test(a.id))).toEqual([]);
  });

  test('fails when a resource has an unacknowledged finding', () => {
    const app = checkedApp();
    const { stack } = makeStack({ app });
    new s3.Bucket(stack, 'Unlogged', { enforceSSL: true });
    expect(() => app.synth()).toThrow(/AwsSolutions-S1/);
  });
});
