/**
 * The little the Kubernetes edge needs from a logger: klog-like levels and verbosity.
 * The program's klog logger satisfies it structurally; tests pass a recorder.
 */
export interface KubeLogger {
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  /** Messages at verbosity `level`, dropped unless `-v` is at least that high. */
  v(level: number): { info(message: string): void };
}
