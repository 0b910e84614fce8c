// How two training runs of the same data and settings are compared when they ran on different
// vector units (the page's WebAssembly SIMD, the native binary's AVX-512, AVX2 or SSE kernels).
// They add the same numbers in different orders, so their losses part in the last bits; the
// Lab's settings then amplify that difference about tenfold per epoch (mostly through the age
// head): by the fifth epoch the runs stand as far apart as runs with a setting changed, and an
// Early Freeze decision can go either way. The figures behind each bound are in
// docs/lab-agreement.md.

/// The largest relative gap of the two runs' first-epoch validation losses that float order
/// alone explains: measured at most 2.2e-7 over the page and three native vector paths; the
/// smallest real difference tried (weight decay 1e-5 instead of 2e-5) parts them by 7e-3.
export const FIRST_EPOCH_GAP = 1e-5;

/// How far apart in epochs the two runs' Early Freeze may converge a task: the page's run and
/// the native trainer's through three vector paths, and 11 native runs whose learning rate was
/// moved by 1e-6 to 1.1e-5 of itself (first-epoch gaps up to 7.6e-6, float order's size),
/// converged gender and race at epoch 8 every time and age at 13 or 14.
export const CONVERGENCE_SHIFT = 1;

/// A run's validation losses, `[epoch][task]`, from the page's epoch reports.
export const pageLosses = (run) => run.reports.map((r) => run.request.tasks.map((t) => r.rows.find((row) => row.task === t).val_loss));

/// A native run's validation losses, `[epoch][task]`, from its metrics.csv (written in full).
export function nativeLosses(csv, tasks) {
  const rows = csv.trim().split("\n").slice(1).map((line) => line.split(","));
  const epochs = Math.max(...rows.map((r) => Number(r[0]))) + 1;
  return Array.from({ length: epochs }, (_, e) => tasks.map((t) => Number(rows.find((r) => Number(r[0]) === e && r[1] === t)[3])));
}

const relative = (a, b) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), Number.MIN_VALUE);

/// The two runs' validation losses side by side, epoch by epoch, with their relative gap.
export function sideBySide(a, b, tasks) {
  const lines = [`epoch ${tasks.map((t) => `${t}: a / b (gap)`).join(" | ")}`];
  for (let e = 0; e < Math.max(a.length, b.length); e++) {
    const cell = (t) => (a[e] && b[e] ? `${a[e][t]} / ${b[e][t]} (${relative(a[e][t], b[e][t]).toExponential(1)})` : `${a[e]?.[t] ?? "-"} / ${b[e]?.[t] ?? "-"}`);
    lines.push(`${e} ${tasks.map((_, t) => cell(t)).join(" | ")}`);
  }
  return lines.join("\n");
}

/// Early Freeze replayed on one run's losses (as `EarlyFreeze::observe` does it): per epoch and
/// task whether the loss improved on the best so far, and each task's convergence epoch and
/// best epoch.
export function replay(losses, patience) {
  const tasks = losses[0].map(() => ({ best: Infinity, bestEpoch: 0, waited: 0, converged: null }));
  const improved = losses.map((row, epoch) =>
    row.map((loss, t) => {
      const task = tasks[t];
      if (task.converged !== null) return null;
      const better = Number.isFinite(loss) && loss < task.best;
      if (better) Object.assign(task, { best: loss, bestEpoch: epoch, waited: 0 });
      else if (++task.waited >= patience) task.converged = epoch;
      return better;
    }),
  );
  return { improved, tasks };
}

/// Why two runs of the same data and settings (`a`, `b`: validation losses per epoch and task)
/// do not agree as float order allows, or null when they do:
/// - the first epoch's losses within FIRST_EPOCH_GAP (same data, settings, initial network,
///   batches and dropout: any of them changed parts the runs by far more);
/// - every task converges in both runs, in the same order, each at most CONVERGENCE_SHIFT epochs
///   apart, and each run ends with its last convergence (so their lengths differ by at most as
///   much).
/// The largest relative gap of two runs' first-epoch validation losses, over the tasks.
export const firstEpochGap = (a, b) => Math.max(...a[0].map((loss, t) => relative(loss, b[0][t])));

export function disagreement(a, b, tasks, patience) {
  const first = firstEpochGap(a, b);
  if (!(first <= FIRST_EPOCH_GAP)) return `the first epoch's validation losses part by ${first.toExponential(2)} (float order alone: below ${FIRST_EPOCH_GAP})`;
  const [ra, rb] = [replay(a, patience), replay(b, patience)];
  if ([ra, rb].some((r) => r.tasks.some((t) => t.converged === null))) return "a task never converged";
  const order = (r) => tasks.map((_, t) => t).sort((x, y) => r.tasks[x].converged - r.tasks[y].converged || x - y);
  if (order(ra).join() !== order(rb).join()) return `the tasks converged in another order: ${order(ra)} against ${order(rb)}`;
  for (const [t, name] of tasks.entries()) {
    const [x, y] = [ra.tasks[t].converged, rb.tasks[t].converged];
    if (Math.abs(x - y) > CONVERGENCE_SHIFT) return `${name} converged at epoch ${x} against ${y}: float order moves a convergence by at most ${CONVERGENCE_SHIFT}`;
  }
  const ends = [ra, rb].map((r) => Math.max(...r.tasks.map((t) => t.converged)) + 1);
  if (ends[0] !== a.length || ends[1] !== b.length) return `the runs end after ${a.length} and ${b.length} epochs, not at their last convergence (${ends})`;
  return null;
}
