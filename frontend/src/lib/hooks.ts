import {
  type DependencyList,
  type RefObject,
  useCallback,
  useEffect,
  useEffectEvent,
  useRef,
  useState,
  useSyncExternalStore,
} from "react";

export interface AsyncState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  setData: (fn: (old: T | undefined) => T | undefined) => void;
}

function sameDeps(a: DependencyList, b: DependencyList): boolean {
  return a.length === b.length && a.every((d, i) => Object.is(d, b[i]));
}

/**
 * True on the render where `deps` differ from the previous render's (compared as React compares effect
 * deps). Lets a hook reset its state while rendering, React's pattern for state that follows a prop,
 * instead of resetting it in an effect (which renders twice).
 */
function useDepsChanged(deps: DependencyList): boolean {
  const [seen, setSeen] = useState(deps);
  const changed = !sameDeps(seen, deps);
  if (changed) setSeen(deps);
  return changed;
}

/**
 * Runs `fn` when deps change (or on `reload`); stale answers are dropped. While a run is pending,
 * `loading` is true, `error` null and `data` the last answer. ESLint checks each caller's deps like an
 * effect's (`additionalHooks` in eslint.config.js).
 */
export function useAsync<T>(fn: () => Promise<T>, deps: DependencyList): AsyncState<T> {
  const [data, setDataState] = useState<T | undefined>(undefined);
  const [run, setRun] = useState(0);
  const [settled, setSettled] = useState<{ run: number; error: unknown } | null>(null);
  if (useDepsChanged(deps)) setRun((n) => n + 1);
  const load = useEffectEvent(fn);
  useEffect(() => {
    let live = true;
    load().then(
      (v) => {
        if (!live) return;
        setDataState(v);
        setSettled({ run, error: null });
      },
      (e: unknown) => {
        if (live) setSettled({ run, error: e });
      },
    );
    return () => {
      live = false;
    };
  }, [run]);
  const reload = useCallback(() => setRun((n) => n + 1), []);
  const setData = useCallback((f: (old: T | undefined) => T | undefined) => setDataState(f), []);
  const loading = settled?.run !== run;
  return { data, error: loading ? null : settled.error, loading, reload, setData };
}

/**
 * Milliseconds since `active` turned true or `resetKey` last changed, updated every `ms`; 0 while
 * inactive. Measured on the wall clock, so throttled timers in a background tab do not slow it.
 */
export function useElapsed(active: boolean, resetKey: unknown = null, ms = 1000): number {
  const [elapsed, setElapsed] = useState(0);
  if (useDepsChanged([active, resetKey, ms])) setElapsed(0);
  useEffect(() => {
    if (!active) return;
    const start = Date.now();
    const t = setInterval(() => setElapsed(Date.now() - start), ms);
    return () => clearInterval(t);
  }, [active, resetKey, ms]);
  return active ? elapsed : 0;
}

/** True once `active` has stayed true for `ms` (for "this is taking long" messages); `resetKey` restarts it. */
export function useAfter(active: boolean, ms: number, resetKey: unknown = null): boolean {
  const [late, setLate] = useState(false);
  if (useDepsChanged([active, ms, resetKey])) setLate(false);
  useEffect(() => {
    if (!active) return;
    const t = setTimeout(() => setLate(true), ms);
    return () => clearTimeout(t);
  }, [active, ms, resetKey]);
  return late;
}

/** The clock as an external store: read when a subscription starts and on each tick. */
function createClock() {
  let now = Date.now();
  return {
    read: () => now,
    run(ms: number, onTick: () => void): () => void {
      now = Date.now();
      const t = setInterval(() => {
        now = Date.now();
        onTick();
      }, ms);
      return () => clearInterval(t);
    },
  };
}

/**
 * The current time, re-rendering every `ms` while active (read afresh when `active` turns true: React
 * re-renders when a new subscription finds the store changed).
 */
export function useNow(active: boolean, ms = 1000): number {
  const [clock] = useState(createClock);
  const subscribe = useCallback((onTick: () => void) => (active ? clock.run(ms, onTick) : () => {}), [clock, active, ms]);
  return useSyncExternalStore(subscribe, clock.read);
}

/** A side panel's keyboard behaviour: the returned element takes focus whenever ``openKey`` changes (the
 * panel opens or shows another item), and Escape anywhere calls ``onClose``. */
export function usePanel<E extends HTMLElement>(openKey: unknown, onClose: () => void): RefObject<E | null> {
  const focusRef = useRef<E>(null);
  useEffect(() => {
    focusRef.current?.focus();
  }, [openKey]);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
  return focusRef;
}
