/** The operator page's stylesheet: one column at phone width, a grid of cards from 700 px. */
export const ADMIN_STYLE = String.raw`
:root { --ok: #1b7f3b; --warn: #a35f00; --bad: #b3261e; --muted: #5f6368; --line: #d0d4d9; --bg: #f6f7f9; --gen: #3b6fb6; --focus: #0b57d0;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 15px; color: #1f2328; background: var(--bg); }
* { box-sizing: border-box; }
body { margin: 0; }
main { padding: 0 16px 32px; max-width: 1400px; margin: 0 auto; }
h1 { font-size: 1.3rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 24px 0 8px; }
a { color: var(--focus); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px 8px; z-index: 10; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
.top { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px; padding: 12px 16px; background: #fff; border-bottom: 1px solid var(--line); }
.top-actions { display: flex; align-items: center; gap: 12px; margin-left: auto; flex-wrap: wrap; }
.updated, .hint { color: var(--muted); font-size: .9rem; }
.verdict { margin: 0; padding: 2px 10px; border-radius: 12px; font-weight: 600; background: #e8eaed; }
.verdict.ok { background: #e6f4ea; color: var(--ok); }
.verdict.degraded { background: #fef3e0; color: var(--warn); }
.verdict.down { background: #fce8e6; color: var(--bad); }
.banner { margin: 0; padding: 8px 16px; background: #fef3e0; color: #5c3b00; }
button { font: inherit; padding: 6px 12px; border-radius: 6px; border: 1px solid var(--line); background: #fff; cursor: pointer; min-height: 36px; }
button:disabled { opacity: .5; cursor: default; }
button.primary { background: var(--focus); color: #fff; border-color: var(--focus); }
button.danger { color: var(--bad); border-color: var(--bad); }
button.danger:hover:not(:disabled) { background: #fce8e6; }
.problems { margin: 0 0 8px; padding-left: 20px; }
.problems li { color: var(--warn); }
.problems li.none { color: var(--ok); list-style: none; margin-left: -20px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 8px; margin: 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card dt { font-size: .85rem; color: var(--muted); }
.card dd { margin: 4px 0 0; font-weight: 600; overflow-wrap: anywhere; }
.card dd small { display: block; font-weight: 400; color: var(--muted); }
.good { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); }
.timeline-controls { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; margin-bottom: 6px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: center; font-size: .85rem; color: var(--muted); }
.key { display: inline-block; width: 12px; height: 12px; border-radius: 50%; margin-right: -6px; }
.key.gen { background: var(--gen); border-radius: 2px; height: 8px; }
.key.valid { background: var(--ok); } .key.invalid { background: var(--bad); } .key.never { background: #fff; border: 2px solid var(--muted); }
.key.safety { background: #8e44ad; transform: rotate(45deg); border-radius: 1px; width: 10px; height: 10px; }
.timeline-wrap { position: relative; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 4px; }
#timeline { display: block; width: 100%; height: 120px; }
#timeline .gen-bar { fill: var(--gen); cursor: crosshair; }
#timeline .gen-bar.broken { fill: #7a8ca5; }
#timeline .gap { fill: url(#gap-hatch); }
#timeline .mark { cursor: pointer; stroke-width: 2; }
#timeline .mark.valid { fill: var(--ok); stroke: var(--ok); }
#timeline .mark.invalid { fill: var(--bad); stroke: var(--bad); }
#timeline .mark.never { fill: #fff; stroke: var(--muted); }
#timeline .mark.failed { fill: #fff; stroke: var(--bad); stroke-dasharray: 2 2; }
#timeline .mark.safety { stroke: #8e44ad; }
#timeline .mark:focus { outline: none; stroke: var(--focus); stroke-width: 4; }
#timeline .now { stroke: #1f2328; stroke-dasharray: 4 3; }
#timeline .pick { stroke: var(--bad); stroke-width: 2; }
#timeline text { font-size: 11px; fill: var(--muted); }
.tip { position: absolute; z-index: 5; max-width: 280px; background: #1f2328; color: #fff; padding: 6px 8px; border-radius: 6px; font-size: .85rem; pointer-events: none; }
.restore-to { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-top: 8px; }
.restore-to input { font: inherit; padding: 5px; min-height: 36px; }
.utc { color: var(--muted); font-size: .85rem; }
.filters { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; margin-bottom: 6px; }
select { font: inherit; padding: 4px; min-height: 32px; }
.table-wrap { overflow-x: auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; min-width: 640px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-size: .85rem; color: var(--muted); font-weight: 600; background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td .actions { display: flex; gap: 6px; }
td button { min-height: 30px; padding: 3px 8px; }
.pager { display: flex; gap: 12px; align-items: center; justify-content: center; margin-top: 8px; }
#job-list { padding-left: 20px; }
#job-list li { margin: 4px 0; }
progress { vertical-align: middle; width: 120px; }
dialog { max-width: min(520px, 94vw); border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; }
dialog::backdrop { background: rgba(0, 0, 0, .35); }
.replaced { color: var(--bad); }
.dialog-actions { display: flex; justify-content: flex-end; gap: 8px; }
@media (max-width: 600px) {
  main { padding: 0 8px 24px; }
  .top { padding: 8px; }
  .top-actions { margin-left: 0; }
  #timeline { height: 110px; }
  .cards { grid-template-columns: 1fr 1fr; }
  /* Each backup a small card of label and value: no sideways scrolling on a phone. */
  table { min-width: 0; }
  table thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table, tbody, tr, td { display: block; }
  tr { padding: 6px 10px; border-bottom: 1px solid var(--line); }
  td { display: flex; gap: 8px; padding: 2px 0; border: 0; white-space: normal; }
  td.num { text-align: left; }
  td::before { content: attr(data-label); flex: 0 0 96px; color: var(--muted); font-size: .85rem; }
}
`;
