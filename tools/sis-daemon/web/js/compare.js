// The comparison view: a `compare` run's report (the kernel's `stresstest compare` JSON, docs/autonomy.md), one
// row per figure with autonomy off and on side by side, the change, the paired mean difference, the effect size
// d_z, and the Wilcoxon and Holm p-values, exactly as the report gives them.

import { decimal, element, integer, NONE, pValue } from './format.js';

function errorCode(error) {
  return error && error.code ? ` (${String(error.code).replaceAll('_', ' ')})` : '';
}

function cell(text, key, className) {
  return element('td', { text, data: { key }, className });
}

/** One figure's row. */
function row(comparison) {
  const paired = comparison.paired ?? {};
  const t = paired.t_test;
  const difference = t
    ? `${decimal(t.mean_difference, 2)} [${decimal(t.ci95_low, 2)}, ${decimal(t.ci95_high, 2)}]`
    : `${NONE}${errorCode(paired.t_test_error)}`;
  const change = comparison.change_percent == null ? NONE : `${decimal(comparison.change_percent, 1)} %`;
  const tr = element('tr', { data: { figure: comparison.figure.key } });
  tr.append(
    cell(comparison.figure.label, 'label'),
    cell(comparison.figure.better, 'better'),
    cell(decimal(comparison.off_mean, 2), 'off_mean'),
    cell(decimal(comparison.on_mean, 2), 'on_mean'),
    cell(change, 'change_percent'),
    cell(difference, 'mean_difference'),
    cell(comparison.effect_size_dz == null ? NONE : decimal(comparison.effect_size_dz, 2), 'effect_size_dz'),
    cell(comparison.p_value == null ? `${NONE}${errorCode(paired.wilcoxon_error)}` : pValue(comparison.p_value), 'p_value'),
    cell(pValue(comparison.p_value_adjusted), 'p_value_adjusted'),
    cell(`${integer(comparison.informative_pairs)} of ${integer(paired.pairs)}`, 'informative_pairs'),
    cell(comparison.verdict, 'verdict', `verdict-${comparison.verdict.replaceAll(' ', '-')}`),
  );
  return tr;
}

/** Shows run `full` (`GET /api/stress/{id}`) of type compare in `table`, with a summary line in `summary`. */
export function renderComparison(table, summary, full) {
  const { run, report } = full;
  const compare = report && report.compare;
  summary.dataset.testId = String(run.test_id);
  if (!compare) {
    const why = report?.error?.message ?? run.summary ?? 'no report';
    summary.textContent = `Run #${run.test_id} (compare): ${run.status}: ${why}`;
    table.hidden = true;
    return;
  }
  const off = compare.autonomy_off.interventions.total;
  const on = compare.autonomy_on.interventions.total;
  summary.textContent = `Run #${run.test_id}: ${compare.test}, ${compare.runs} pairs of ${integer(compare.duration_ms)} ms, `
    + `seed ${run.seed}, ${run.status}. Interventions: ${integer(off)} with autonomy off, ${integer(on)} on. `
    + `Figures better ${compare.figures_better}, worse ${compare.figures_worse}, changed ${compare.figures_changed}, `
    + `no difference ${compare.figures_unchanged} (${compare.correction} over ${compare.family_size}; a figure differs `
    + `at adjusted p < ${compare.differs_level}). Autonomy thread: ${integer(compare.autonomy_cpu_share_per_mille)} ‰ `
    + 'of the CPU in the runs with autonomy on.';
  table.tBodies[0].replaceChildren(...compare.comparisons.map(row));
  table.hidden = false;
}
