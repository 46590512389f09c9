/**
 * aws-local-stepfunctions 3 calls Promise.withResolvers (Node 22). stepdeploy supports Node 22 and
 * later; on Node 20, which is past its end of life but still common on laptops, every Task would
 * fail with "Promise.withResolvers is not a function" — this keeps `npm start` working there while
 * npm's EBADENGINE warning tells the user to upgrade. Load this before the engine.
 */
interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

const P = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> };
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T>(): Resolvers<T> {
    let resolve!: Resolvers<T>['resolve'];
    let reject!: Resolvers<T>['reject'];
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

export {};
