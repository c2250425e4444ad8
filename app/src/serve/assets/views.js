// The gallery, "more like this" (query by item) and the index's facts.
import { getItems, searchItem, thumbUrl } from './api.js';

export const PAGE = 60;
/** The offset of the last page of `total` items (0 when there are none). */
const lastPageOf = (total) => Math.max(0, Math.floor((total - 1) / PAGE) * PAGE);
const THUMB = 160;

/** `el('div.card', {title: 'x'}, child, 'text')`: one element, no innerHTML. */
export function el(spec, attrs = {}, ...children) {
  const [head, ...classes] = spec.split('.');
  const [tag, id] = head.split('#');
  const e = document.createElement(tag);
  if (id) e.id = id;
  if (classes.length) e.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** The file's name; for an IDX row (`path#row`), the row first. */
export function fileName(path) {
  if (!path) return '';
  const name = path.split('/').pop();
  const row = name.match(/^(.*)#(\d+)$/);
  return row ? `row ${row[2]} · ${row[1]}` : name;
}

export function hashFor(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}

export function className(info, label) {
  if (label === null || label === undefined) return '';
  return info.index.classes[label] ?? String(label);
}

/**
 * Why `k` or `ef` cannot be sent, in the page's words (the engine's own
 * message reads `must be in 1..=1000`), or null when both are fine.
 */
export function limitsProblem(info, k, ef) {
  const l = info.limits;
  const bad = (v, max) => !/^\d+$/.test(String(v).trim()) || Number(v) < 1 || Number(v) > max;
  if (bad(k, l.max_k)) return `k (the number of neighbours) must be a whole number from 1 to ${l.max_k.toLocaleString('en')}, the most this server answers; it is ${String(k).trim() || 'empty'}.`;
  if (bad(ef, l.max_ef)) return `ef (how many candidates the search keeps; more is slower and finds more) must be a whole number from 1 to ${l.max_ef.toLocaleString('en')}; it is ${String(ef).trim() || 'empty'}.`;
  return null;
}

/**
 * What an empty list of results means: with a class filter, that no other
 * item has that class; else that the index holds nothing else to return.
 * `clear` is the link that drops the filter.
 */
export function emptyNote(info, label, clear) {
  const text = label !== ''
    ? [`No neighbours of class ${className(info, label)}: no other item in the index has that class. `, el('a#clear-filter', { id: 'clear-filter', href: clear }, 'Show any class')]
    : ['No neighbours: the index holds no other item.'];
  return el('p#empty.empty', { id: 'empty' }, text);
}

/**
 * Whether hits can be drawn right (green) or wrong (red) against `truth`,
 * the query's class, when only class `only` was asked for: a filter to
 * another class passes no hit of the query's class, so every card was
 * drawn red, as if the search had failed. Gives the class to judge by
 * (undefined: not judged) and, when a class was given but cannot be
 * judged by, the line that says why.
 */
export function judging(info, truth, only) {
  const given = truth !== undefined && truth !== null && truth !== '';
  if (!given || only === '' || only === undefined || only === null || String(only) === String(truth)) {
    return { truth: given ? truth : undefined, note: null };
  }
  const [t, o] = [className(info, truth), className(info, only)];
  return {
    truth: undefined,
    note: el('p#unjudged.muted', { id: 'unjudged' },
      `Not marked right or wrong: only class ${o} was asked for, so no result can be of the query's class ${t}. `
      + `Choose any class or ${t} under “Only class” to mark them.`),
  };
}

const hasScore = (v) => v !== undefined && v !== null && Number.isFinite(Number(v));

/**
 * What a scored index says of one query, as a line above its results:
 * `own` (the item's recorded score), `readout` (the query image's grade by
 * the model's score read-out, which learnt from the labels `learnt`) and
 * `predicted` (the hits' scores weighted by 1/distance). Null when the
 * answer has none of them.
 */
export function gradeLine({ own, readout, predicted, learnt }) {
  const parts = [];
  if (hasScore(own)) parts.push(el('span#own-score', { id: 'own-score', dataset: { value: own } }, el('b', {}, `score ${Number(own).toFixed(2)}`), ' (recorded)'));
  if (hasScore(readout)) parts.push(el('span#readout-score', { id: 'readout-score', dataset: { value: readout } }, el('b', {}, `grade ${Number(readout).toFixed(2)}`), ` (the model's score read-out${learnt && learnt.length ? `, which learnt from ${learnt.join(', ')}` : ''})`));
  if (hasScore(predicted)) parts.push(el('span#predicted-score', { id: 'predicted-score', dataset: { value: predicted } }, el('b', {}, `neighbours' score ${Number(predicted).toFixed(2)}`), ' (the hits\' scores weighted by 1/distance)'));
  if (!parts.length) return null;
  return el('p#grades.grades', { id: 'grades' }, parts.flatMap((p, i) => (i ? [' · ', p] : [p])));
}

/** Four decimals; a rounding error's -0.0000 (a cosine distance of -3e-8) as 0.0000. */
const fixed4 = (v) => Number(v).toFixed(4).replace(/^-(0\.0+)$/, '$1');

/**
 * Which side of the face a region is on, where the index records it: two
 * "eye" cards once looked alike, and users compare a face's left with its
 * right. The side is the subject's own (as `Side` records it), not the
 * viewer's.
 */
function sideNote(x) {
  if (x.side !== 'left' && x.side !== 'right') return null;
  return el('span.side', { title: x.subject ? `subject ${x.subject}` : "the side of the subject's face" }, ` · subject's ${x.side}`);
}

/**
 * One item or hit as a card; clicking it asks for more like it, with the
 * view's k, ef and class filter (`label`): links once carried k alone, so
 * a click dropped the filter the user had chosen.
 */
export function card(info, x, { rank, distance, truth, region, k, ef, label } = {}) {
  const cls = x.class ?? className(info, x.label);
  const judged = truth !== undefined && truth !== null && truth !== '' && x.label !== undefined;
  const ok = judged && String(x.label) === String(truth);
  const img = !x.path
    ? el('span.noimage', {}, `#${x.id}`)
    : el('img', {
    // IDX rows are 28×28: scaled up, their pixels stay sharp.
    class: /#\d+$/.test(x.path) ? 'px' : null,
    src: thumbUrl(x.id, THUMB, region),
    loading: 'lazy',
    decoding: 'async',
    alt: `item ${x.id}`,
    width: THUMB,
    height: THUMB,
  });
  const href = hashFor(`/item/${x.id}`, { k, ef, label });
  return el(
    'a.card',
    {
      href,
      title: `${x.path || `item ${x.id}`}${x.subject ? ` (subject ${x.subject})` : ''}`,
      class: `card${judged ? (ok ? ' ok' : ' bad') : ''}`,
      dataset: {
        id: x.id,
        label: x.label ?? '',
        class: cls,
        rank: rank ?? '',
        distance: distance ?? '',
        score: hasScore(x.score) ? x.score : '',
        side: x.side ?? '',
        subject: x.subject ?? '',
      },
    },
    el('div.thumb', {}, img),
    el(
      'div.meta',
      {},
      rank !== undefined ? el('span.rank', {}, `#${rank}`) : null,
      // Labelled: a bare 0.1994 under a picture said nothing of what it was.
      distance !== undefined ? el('span.distance', { title: `${info.index.metric} distance to the query: smaller is more alike` }, `distance ${fixed4(distance)}`) : null,
      el('span.class', {}, cls || '—', x.label !== null && x.label !== undefined && cls !== String(x.label) ? el('span.label', { title: 'label' }, ` ${x.label}`) : null, sideNote(x)),
      hasScore(x.score) ? el('span.score', { title: 'the recorded score' }, `score ${Number(x.score).toFixed(2)}`) : null,
      el('span.file', {}, fileName(x.path) || `item ${x.id}`),
    ),
  );
}

export function facts(info) {
  const i = info.index;
  const m = info.model;
  const parts = [`${i.count.toLocaleString('en')} items`, `dim ${i.dim}`, i.metric];
  // Only a model the server runs is named: with --no-model the index still
  // records one, and the header named it beside "No image search".
  if (!info.image_search) parts.push('no model');
  else if (m && m.found) parts.push(`model: ${m.name} (${m.arch}, dim ${m.dim}${m.trained ? `, trained ${m.trained}` : ''})`);
  return parts.join(' · ');
}

function table(head, rows) {
  return el(
    'table',
    {},
    el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c))))),
  );
}

const fmt = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v ?? '—');

/**
 * `eval --score`: how well each score is predicted from its neighbours,
 * against the baselines that ignore the image (a graded index's info said
 * nothing of it).
 */
function scorePanel(e) {
  const s = e.score;
  const names = { knn: 'neighbours', global_mean: 'global mean', label_mean: 'label mean' };
  const rows = [['all', s], ...s.per_label.map((l) => [l.class, l])].flatMap(([who, p]) =>
    Object.entries(names).map(([key, name]) => [who, name, fmt(p[key].n), fmt(p[key].mae), fmt(p[key].rmse), fmt(p[key].spearman)]));
  const t = table(['label', 'predictor', 'items', 'MAE', 'RMSE', "Spearman's ρ"], rows);
  t.id = 'score-eval';
  return [
    el('h3', {}, `Score prediction (${e.protocol}, ${fmt(s.scored)} scored items)`),
    el('p.muted', {}, `"neighbours": the ${s.weighting ?? 'neighbours\' scores'}${s.k ? ` (K = ${s.k})` : ''}; the means are baselines that ignore the image. MAE and RMSE are in the scores' own units (lower is better); Spearman's ρ is 1 when the order is right.`),
    t,
    e.score_png ? el('img.chart', { src: '/info/score.png', alt: 'predicted against recorded scores' }) : null,
  ];
}

/** The index, model and eval facts (collapsed under the gallery). */
export function infoPanel(info, open) {
  const i = info.index;
  const rows = [
    ['items', i.count.toLocaleString('en')],
    ['dimension', i.dim],
    ['metric', i.metric],
    ['graph', `${i.levels} levels, M ${i.m}, ef_construction ${i.ef_construction} (${i.builder})`],
    ['built', i.created],
    ['folder', i.dir],
  ];
  const m = info.model;
  if (m) {
    const what = m.found ? `${m.name}: ${m.arch}, dim ${m.dim}, input ${m.input_size} px` : `${m.dir} (no model.json)`;
    rows.push([info.image_search ? 'model' : 'model (recorded, not loaded)', what]);
    if (m.trained) rows.push(['trained', `${m.trained}${m.epochs ? `, ${m.epochs} epochs (best ${m.best_epoch})` : ''}${m.device ? ` on ${m.device}` : ''}`]);
  }
  rows.push(['image search', info.image_search ? 'yes' : `no: ${info.image_search_unavailable}`]);
  const parts = [el('h3', {}, 'Index and model'), table(['', ''], rows)];
  const e = info.eval;
  if (e) {
    // Recall@K in K order first, then the rest as `likeness eval` prints them.
    const recall = Object.keys(e.scores)
      .filter((k) => k.startsWith('recall@'))
      .sort((a, b) => parseInt(a.slice(7), 10) - parseInt(b.slice(7), 10));
    const keys = [...recall, ...['precision@1', 'r_precision', 'map@r'].filter((k) => k in e.scores)];
    parts.push(el('h3', {}, `Evaluation (${e.protocol}, ${e.queries} queries)`));
    parts.push(table(keys, [keys.map((k) => fmt(e.scores[k]))]));
    const pk = ['queries', ...e.ks.map((k) => `recall@${k}`), 'map@r'];
    parts.push(
      table(
        ['class', ...pk],
        (e.per_class || []).map((c) => [c.class ?? c.label, ...pk.map((k) => fmt(c[k]))]),
      ),
    );
    if (e.eval_png) parts.push(el('img.chart', { src: '/info/eval.png', alt: 'evaluation by class' }));
    if (e.score) parts.push(...scorePanel(e));
  }
  if (m && m.curves_png) parts.push(el('img.chart', { src: '/info/curves.png', alt: 'training curves' }));
  const d = el('details#info.panel', { open }, el('summary', {}, 'Index, model and evaluation'), parts);
  // Open or closed goes into the URL (#/?info=open), without a history entry.
  d.addEventListener('toggle', () => {
    const [path, qs] = location.hash.replace(/^#/, '').split('?');
    const q = new URLSearchParams(qs || '');
    if (d.open) q.set('info', 'open');
    else q.delete('info');
    history.replaceState(history.state, '', hashFor(path || '/', Object.fromEntries(q)));
  });
  return d;
}

/** Classes as <option>s (with counts when known), after a first option. */
export function classOptions(info, first, selected) {
  const i = info.index;
  const opts = [el('option', { value: '' }, first)];
  i.classes.forEach((c, label) => {
    const n = i.class_counts ? ` (${i.class_counts[label]})` : '';
    opts.push(el('option', { value: label, selected: String(label) === String(selected) }, `${c}${n}`));
  });
  return opts;
}

export async function renderGallery(view, info, params, go) {
  const offset = Math.max(0, parseInt(params.get('offset') || '0', 10) || 0);
  const label = params.get('label') ?? '';
  const show = params.get('show') || 'crop';
  const page = await getItems(offset, PAGE, label);
  const nav = (o) => go('/', { offset: o || '', label, show: show === 'crop' ? '' : show });
  const filter = info.index.has_labels
    ? el(
        'label',
        {},
        'Class ',
        el(
          'select#class-filter',
          { id: 'class-filter', onchange: (e) => go('/', { label: e.target.value, show: show === 'crop' ? '' : show }) },
          classOptions(info, 'all classes', label),
        ),
      )
    : null;
  const regions = page.items.some((x) => x.region);
  const showSel = regions
    ? el(
        'label',
        {},
        'Regions ',
        el(
          'select#show',
          { id: 'show', onchange: (e) => go('/', { offset: offset || '', label, show: e.target.value === 'crop' ? '' : e.target.value }) },
          ['crop', 'outline', 'none'].map((v) => el('option', { value: v, selected: v === show }, v === 'crop' ? 'cropped' : v === 'outline' ? 'outlined' : 'whole image')),
        ),
      )
    : null;
  const last = Math.min(offset + page.items.length, page.total);
  const count = el(
    'span#gallery-count',
    { id: 'gallery-count', dataset: { total: page.total } },
    !page.total
      ? 'no items'
      : page.items.length
        ? `items ${(offset + 1).toLocaleString('en')}–${last.toLocaleString('en')} of ${page.total.toLocaleString('en')}`
        : `no items past ${page.total.toLocaleString('en')}: `,
  );
  // A page past the end (an old link, after deletes): the way to the last one.
  if (page.total && !page.items.length) {
    const lastPage = lastPageOf(page.total);
    count.append(el('a#last-page', { id: 'last-page', href: hashFor('/', { offset: lastPage || '', label, show: show === 'crop' ? '' : show }) }, 'the last page'));
  }
  const pager = el(
    'span.pager',
    {},
    // From a page past the end, back to the last page (one page back from
    // there was another page past the end).
    el('button#prev', { id: 'prev', disabled: offset === 0, onclick: () => nav(offset >= page.total ? lastPageOf(page.total) : Math.max(0, offset - PAGE)) }, '‹ previous'),
    el('button#next', { id: 'next', disabled: last >= page.total, onclick: () => nav(offset + PAGE) }, 'next ›'),
  );
  const grid = el(
    'div#gallery.grid',
    { id: 'gallery' },
    page.items.map((x) => card(info, x, { region: show, label })),
  );
  view.replaceChildren(
    el('section.toolbar', {}, filter, showSel, count, pager),
    grid,
    infoPanel(info, params.get('info') === 'open'),
  );
  return grid;
}

export async function renderItem(view, info, id, params, go) {
  const k = params.get('k') || String(info.limits.default_k);
  const ef = params.get('ef') || String(info.limits.default_ef);
  const label = params.get('label') ?? '';
  // A refused search still shows the form, so that the k or ef at fault can
  // be corrected (a link with k=5000 left "Loading…" and no form).
  let res = null;
  let error = limitsProblem(info, k, ef);
  if (!error) {
    try {
      res = await searchItem(id, { k, ef, labels: label });
    } catch (e) {
      error = e.message;
    }
  }
  const change = (patch) => go(`/item/${id}`, { k, ef, label, ...patch });
  const controls = el(
    'section.toolbar',
    {},
    el('label', {}, 'k ', el('input#k', { id: 'k', type: 'number', min: 1, max: info.limits.max_k, value: k, onchange: (e) => change({ k: e.target.value }) })),
    el('label', {}, 'ef ', el('input#ef', { id: 'ef', type: 'number', min: 1, max: info.limits.max_ef, value: ef, onchange: (e) => change({ ef: e.target.value }) })),
    info.index.has_labels
      ? el('label', {}, 'Only class ', el('select#result-filter', { id: 'result-filter', onchange: (e) => change({ label: e.target.value }) }, classOptions(info, 'any class', label)))
      : null,
    res ? el('span#status.muted', { id: 'status' }, `${res.hits.length} neighbours in ${res.took_ms.toFixed(2)} ms (server)`) : null,
  );
  if (!res) {
    const grid = el('div#results.grid', { id: 'results', dataset: { query: `item:${id}`, state: 'error' } });
    view.replaceChildren(
      el('h2', {}, `More like item ${id}`),
      controls,
      el('p#item-error.error', { id: 'item-error', role: 'alert' }, error),
      el('p', {}, el('a', { href: '#/' }, 'Back to the gallery')),
      grid,
    );
    return grid;
  }
  const q = res.query;
  const qcls = q.class ?? className(info, q.label);
  const pictures = [];
  if (q.path) {
    const px = /#\d+$/.test(q.path) ? 'large px' : 'large';
    pictures.push(el('img', { class: px, src: thumbUrl(q.id, 320, q.region ? 'outline' : 'none'), alt: `item ${q.id}` }));
    if (q.region) pictures.push(el('img.large', { src: thumbUrl(q.id, 320, 'crop'), alt: `region of item ${q.id}` }));
  } else {
    pictures.push(el('p.muted', {}, 'This index records no images (built from vectors).'));
  }
  const head = el(
    'section#query-item.query',
    { id: 'query-item', dataset: { id: q.id } },
    el('div.pictures', {}, pictures),
    el(
      'div',
      {},
      el('h2', {}, `More like item ${q.id}`),
      el('p', {}, `class ${qcls || '—'}`, q.label !== null ? ` (label ${q.label})` : '', sideNote(q), q.subject ? ` · subject ${q.subject}` : ''),
      el('p.muted', {}, q.path || ''),
      q.region ? el('p.muted', {}, `region ${q.region.map((v) => Math.round(v)).join(', ')} (x0, y0, x1, y1)`) : null,
      gradeLine({ own: q.score, predicted: res.predicted_score }),
    ),
  );
  // Green and red say "same class as the item": not where the user asked
  // for another class, whose every hit was drawn red.
  const { truth, note } = judging(info, q.label, label);
  const grid = el(
    'div#results.grid',
    { id: 'results', dataset: { query: `item:${q.id}`, state: 'done' } },
    res.hits.map((h) => card(info, h, { rank: h.rank, distance: h.distance, truth, k, ef, label })),
  );
  const empty = res.hits.length ? null : emptyNote(info, label, hashFor(`/item/${id}`, { k, ef }));
  view.replaceChildren(head, controls, ...(note ? [note] : []), ...(empty ? [empty] : []), grid);
  return grid;
}
