// exprs.js DASHBOARD.json RULES.yml
// Prints, as a Prometheus rules file, one recording rule per PromQL expression of the Grafana
// dashboard (Grafana's variables replaced by values a query could hold), so that
// `promtool check rules` parses every expression; and, on stderr-free stdout after a line
// "---", every agentaflow_* metric name that the dashboard and the rules file mention.
'use strict';
const fs = require('fs');
const [dash, rules] = process.argv.slice(2);
const d = JSON.parse(fs.readFileSync(dash, 'utf8'));
const exprs = [];
const walk = (panels) => {
  for (const p of panels || []) {
    for (const t of p.targets || []) if (t.expr) exprs.push({ title: p.title, expr: t.expr });
    walk(p.panels);
  }
};
walk(d.panels);
for (const v of (d.templating && d.templating.list) || [])
  if (v.query && v.query.query) {
    const m = /^label_values\((.*),\s*\w+\)$/.exec(v.query.query);
    if (m) exprs.push({ title: 'variable ' + v.name, expr: m[1] });
  }
const concrete = (e) =>
  e.replace(/\$__rate_interval/g, '5m').replace(/\$__interval/g, '1m').replace(/\$\{?(\w+)\}?/g, '.*');
let out = 'groups:\n  - name: grafana-dashboard-expressions\n    rules:\n';
exprs.forEach((x, i) => {
  out += `      - record: dashboard_expr_${i}\n        expr: ${JSON.stringify(concrete(x.expr))}\n`;
});
process.stdout.write(out);
const names = new Set();
const text = exprs.map((x) => x.expr).join('\n') + '\n' + fs.readFileSync(rules, 'utf8');
for (const m of text.matchAll(/\bagentaflow_[a-z0-9_]+/g)) names.add(m[0]);
fs.writeFileSync(process.env.AF_NAMES_OUT || '/dev/null', [...names].sort().join('\n') + '\n');
if (exprs.length === 0) {
  console.error('no expressions found in ' + dash);
  process.exit(1);
}
