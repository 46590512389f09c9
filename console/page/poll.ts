import { useEffect, useRef, useState } from 'preact/hooks';

/**
 * Loads with `load` now and again every `everyMs` while `again(value)` says so; the last error is
 * kept beside the last good value, so a failed refresh does not blank the page.
 */
export function usePoll<T>(
  load: () => Promise<T>,
  deps: ReadonlyArray<unknown>,
  everyMs: number,
  again: (value: T) => boolean = () => true,
): { value?: T; error?: string; refresh: () => void } {
  const [state, setState] = useState<{ value?: T; error?: string }>({});
  const [tick, setTick] = useState(0);
  const latest = useRef(load);
  latest.current = load;
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async (): Promise<void> => {
      let value: T | undefined;
      try {
        value = await latest.current();
        if (!stopped) setState({ value });
      } catch (err) {
        if (!stopped) setState((s) => ({ ...s, error: (err as Error).message }));
      }
      if (!stopped && (value === undefined || again(value))) timer = setTimeout(run, everyMs);
    };
    void run();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [...deps, tick, everyMs]);
  return { ...state, refresh: () => setTick((t) => t + 1) };
}
