// The whole pipeline on a temporary copy of the example: shared with the benchmarks (bench/).
export { startExampleRuntime, type ExampleRuntime as TestRuntime } from '../../local/example-runtime';
