// Query by image: pick, drop or paste an image; optionally drag a box on it
// to search by that region (sent in image pixels whatever the display
// scale), or click one of the facial regions the server found (POST /faces);
// results as cards, judged green/red against "my query is class X" (not
// when "only class" asks for another class, which no result can then be of).
import { findFaces, searchImage } from './api.js';
import { card, classOptions, el, emptyNote, gradeLine, hashFor, judging, limitsProblem } from './views.js';

// The chosen image and its last answer survive navigation (back button).
const current = { file: null, bitmap: null, region: null, result: null, key: null, error: null, faces: [], domain: null };

// The overlay's colours (likeness regions --overlay uses the same).
const COLOURS = { eye: '#00c8ff', under_eye: '#ff00c8', cheek: '#ffa000', brow: '#78ff50', nose: '#ffff00', mouth: '#ff3c3c' };
/** A grade outside what the read-out learnt, on the photo: grey, no region's colour. */
const OUTSIDE = '#9aa3ad';

/** Every region of every face found, smallest first (a click picks the innermost). */
function facialRegions() {
  return current.faces.flatMap((f) => f.regions).sort((a, b) => a.region[2] * a.region[3] - b.region[2] * b.region[3]);
}

/** The facial region under an image point, if any. */
function regionAt([x, y]) {
  return facialRegions().find(({ region: [rx, ry, rw, rh] }) => x >= rx && x <= rx + rw && y >= ry && y <= ry + rh) || null;
}

const regionText = (r) => (r ? r.join(',') : '');

/** A grade with two decimals and a true minus sign (as the differences have). */
const num = (v) => `${v < -0.005 ? '−' : ''}${Math.abs(v).toFixed(2)}`;
/** A difference: signed, and 0.00 unsigned when it rounds to nothing. */
const signed = (d) => (Math.abs(d) < 0.005 ? '0.00' : `${d > 0 ? '+' : '−'}${Math.abs(d).toFixed(2)}`);

/**
 * Why a grade is not to be trusted, or null: `/faces` flags a region whose
 * grade lies more than a tenth of the learnt range outside it
 * (`outside_learnt`), a region unlike those the read-out learnt from, and
 * gives that range once (`score_domain`).
 */
function doubt(r) {
  if (!r || r.outside_learnt !== true) return null;
  const d = current.domain;
  const range = d && typeof d.min === 'number' ? ` (${num(d.min)} to ${num(d.max)})` : '';
  return `outside the grades the read-out learnt from${range}: a region unlike those it learnt, so the grade means little`;
}
/** A grade as shown: greyed and with a "?" when it is outside what was learnt. */
const shownGrade = (r) => `${num(r.grade)}${doubt(r) ? '?' : ''}`;

/**
 * The faces' grades by the model's score read-out, left against right: a
 * table a face, a row a label (subject's left, right, left − right), or
 * null when the server gave no grades. A click on a grade searches by its
 * region.
 */
/** Whether the server graded the faces' regions (and so there are tables). */
const hasGrades = () => current.faces.some((f) => f.regions.some((r) => 'grade' in r));

function gradeTables(pick, range) {
  if (!hasGrades()) return null;
  const graded = (label) => current.faces.some((f) => f.regions.some((r) => r.label === label && typeof r.grade === 'number'));
  const fmt = (r) => (r && typeof r.grade === 'number' ? shownGrade(r) : '—');
  const cell = (r, attrs = {}) => el('td', r && typeof r.grade === 'number'
    ? {
        ...attrs,
        class: doubt(r) ? 'pick outside' : 'pick',
        dataset: { region: regionText(r.region), grade: r.grade, outside: doubt(r) ? 'true' : '' },
        onclick: () => pick(r.region),
        title: doubt(r) ? `${doubt(r)}; search by this region` : 'search by this region',
      }
    : attrs, fmt(r));
  const tables = current.faces.map((f, i) => {
    // Only the labels the read-out grades: rows of dashes for the others
    // (eye, brow, nose, mouth) hid the two that are compared.
    const labels = [...new Set(f.regions.map((r) => r.label))].filter(graded);
    const rows = labels.map((label) => {
      const of = (side) => f.regions.find((r) => r.label === label && r.side === side);
      const [l, r, one] = [of('left'), of('right'), of('')];
      const both = l && r && typeof l.grade === 'number' && typeof r.grade === 'number';
      const diff = both ? l.grade - r.grade : null;
      return el('tr', { dataset: { label } },
        el('th', {}, label),
        ...(one ? [cell(one, { colspan: 2 })] : [cell(l), cell(r)]),
        el('td.diff', diff === null ? {} : { dataset: { value: diff } }, diff === null ? '' : signed(diff)));
    });
    return el('table.grades-table', { dataset: { face: i } },
      el('caption', {}, current.faces.length > 1 ? `face ${i + 1} (numbered on the photo)` : 'the face'),
      el('tr', {}, ['', "subject's left", 'right', 'left − right'].map((h) => el('th', {}, h))),
      rows);
  });
  const others = [...new Set(current.faces.flatMap((f) => f.regions.map((r) => r.label)))].filter((l) => !graded(l));
  const scale = range ? `, on the scale of the grades it learnt from (${num(range[0])} to ${num(range[1])})` : '';
  return el('div#face-grades', { id: 'face-grades' },
    el('p.muted', {}, `Grades by the model's score read-out${scale}. Click a grade to search by its region.`),
    tables,
    current.faces.some((f) => f.regions.some(doubt))
      ? el('p#outside-note.muted', { id: 'outside-note' }, `A grade with “?” lies ${doubt({ outside_learnt: true })}.`)
      : null,
    others.length ? el('p#not-graded.muted', { id: 'not-graded' }, `Not graded (the read-out did not learn them): ${others.join(', ')}.`) : null);
}

function parseRegion(s) {
  if (!s) return null;
  const v = s.split(',').map((x) => parseInt(x, 10));
  return v.length === 4 && v.every((x) => Number.isFinite(x) && x >= 0) && v[2] > 0 && v[3] > 0 ? v : null;
}

function draw(canvas, box) {
  const ctx = canvas.getContext('2d');
  if (!current.bitmap) return;
  // Drawn in image pixels on a backing store as fine as the screen (see
  // paint): a 150 px crop's grades were blurred figures in 150 pixels.
  const [W, H] = [current.bitmap.width, current.bitmap.height];
  const up = Number(canvas.dataset.up) || 1;
  ctx.setTransform(up, 0, 0, up, 0, 0);
  // Small images (28×28 IDX digits and clothes) scaled up stay sharp.
  ctx.imageSmoothingEnabled = W >= 100;
  ctx.drawImage(current.bitmap, 0, 0);
  // Image pixels per screen pixel: lines and figures keep a screen size.
  const perPx = W / (canvas.getBoundingClientRect().width || Math.min(W, 540));
  const thin = 2 * perPx;
  for (const r of facialRegions()) {
    ctx.lineWidth = thin;
    ctx.strokeStyle = COLOURS[r.label] || '#ffffff';
    ctx.setLineDash(r.side === 'right' ? [3 * thin, 2 * thin] : []);
    ctx.beginPath();
    r.corners.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
    ctx.closePath();
    ctx.stroke();
  }
  ctx.setLineDash([]);
  // The chosen box under the grades, so that its own grade stays readable;
  // white on black, a colour no region has.
  if (box) {
    const [x, y, w, h] = box;
    const line = 3 * perPx;
    for (const [colour, width] of [['#000000', line + 2], ['#ffffff', line]]) {
      ctx.lineWidth = width;
      ctx.strokeStyle = colour;
      ctx.strokeRect(x + line / 2, y + line / 2, Math.max(1, w - line), Math.max(1, h - line));
    }
  }
  ctx.textBaseline = 'top';
  const measure = (text, size) => {
    ctx.font = `${size}px system-ui, sans-serif`;
    return [ctx.measureText(text).width + size / 3, size * 1.25];
  };
  const label = (text, x, y, size, colour) => {
    const [w, h] = measure(text, size);
    ctx.fillStyle = 'rgba(0, 0, 0, 0.7)';
    ctx.fillRect(x, y, w, h);
    ctx.fillStyle = colour;
    ctx.fillText(text, x + size / 6, y + size / 8);
  };
  const drawn = [];
  // Faces are numbered to match their grade tables: with no tables (a
  // model that does not grade) the figures named nothing and hid a group
  // photo's small faces.
  const numbered = current.faces.length > 1 && hasGrades();
  current.faces.forEach((f, i) => {
    // At most 13 screen pixels (the 150 px crops scaled up once had 38 px
    // figures over the regions), and sized to the face below that, so that
    // a group photo's small faces keep their grades apart.
    const size = Math.max(1, Math.min(f.box[2] / 9, 13 * perPx));
    if (numbered) label(String(i + 1), f.box[0], Math.max(0, f.box[1] - size * 1.6 - 2), size * 1.3, '#ffffff');
    const middle = f.box[0] + f.box[2] / 2;
    for (const r of f.regions.filter((x) => typeof x.grade === 'number')) {
      // Beside the region, on the face's outer side: written inside, the
      // grade hid the very skin it grades (an under-eye is 18 px high).
      const xs = r.corners.map((c) => c[0]);
      const ys = r.corners.map((c) => c[1]);
      const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
      const text = shownGrade(r);
      const [w, h] = measure(text, size);
      const gap = size / 4;
      const x = (x0 + x1) / 2 >= middle ? x1 + gap : x0 - gap - w;
      const y = (y0 + y1) / 2 - h / 2;
      const at = [Math.min(Math.max(0, x), W - w), Math.min(Math.max(0, y), H - h)];
      // Grey, as in the table: a grade outside what the read-out learnt.
      label(text, at[0], at[1], size, doubt(r) ? OUTSIDE : COLOURS[r.label] || '#ffffff');
      drawn.push({ region: regionText(r.region), bounds: [x0, y0, x1, y1], label: [at[0], at[1], w, h], text, outside: Boolean(doubt(r)) });
    }
  });
  // Where each grade went, for the browser test.
  canvas.dataset.gradeLabels = JSON.stringify(drawn);
  canvas.dataset.faces = String(current.faces.length);
  canvas.dataset.faceNumbers = String(numbered ? current.faces.length : 0);
}

/** Which colour is which region, and which line is which side. */
function legend() {
  const order = Object.keys(COLOURS);
  const rank = (l) => (order.includes(l) ? order.indexOf(l) : order.length);
  const labels = [...new Set(facialRegions().map((r) => r.label))].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  if (!labels.length) return null;
  return el('p#legend.legend', { id: 'legend' },
    labels.map((l) => {
      // Through the CSSOM: the page's Content-Security-Policy drops style attributes.
      const line = el('i');
      line.style.borderTopColor = COLOURS[l] || '#ffffff';
      return el('span.key', { dataset: { label: l } }, line, l);
    }),
    el('span.key', {}, el('i.solid'), "subject's left"),
    el('span.key', {}, el('i.dashed'), "subject's right"));
}

/** Pointer position in image pixels, whatever the canvas's display size. */
function imagePoint(canvas, ev) {
  const r = canvas.getBoundingClientRect();
  const [W, H] = [current.bitmap.width, current.bitmap.height];
  const x = ((ev.clientX - r.left) * W) / r.width;
  const y = ((ev.clientY - r.top) * H) / r.height;
  return [Math.min(Math.max(0, x), W), Math.min(Math.max(0, y), H)];
}

export async function renderQuery(view, info, params, go) {
  if (!info.image_search) {
    view.replaceChildren(
      el(
        'section#no-model.panel',
        {},
        el('h2', {}, 'Query by image is not available'),
        el('p', {}, info.image_search_unavailable),
        el('p', {}, el('a', { href: '#/' }, 'Back to the gallery')),
      ),
    );
    return null;
  }
  const k = params.get('k') || String(info.limits.default_k);
  const ef = params.get('ef') || String(info.limits.default_ef);
  const truth = params.get('truth') ?? '';
  const only = params.get('only') ?? '';
  const urlRegion = parseRegion(params.get('region'));
  if (current.file && regionText(urlRegion) !== regionText(current.region)) current.region = urlRegion;
  const state = () => ({ k: kIn.value, ef: efIn.value, only: onlySel ? onlySel.value : '', truth: truthSel ? truthSel.value : '', region: regionText(current.region) });
  // Settings go into the URL without a new history entry; a new region or
  // photo makes one, so the back button returns to the previous search.
  const remember = () => {
    const next = hashFor('/query', state());
    const shown = new URLSearchParams(location.hash.split('?')[1] || '').get('region') || '';
    // Marked as seen (app.js): coming back to it keeps the scroll.
    if (next !== location.hash && shown !== regionText(current.region)) history.pushState({ seen: true }, '', next);
    else history.replaceState(history.state, '', next);
  };

  const fileIn = el('input#file', { id: 'file', type: 'file', accept: 'image/*' });
  const kIn = el('input#k', { id: 'k', type: 'number', min: 1, max: info.limits.max_k, value: k });
  const efIn = el('input#ef', { id: 'ef', type: 'number', min: 1, max: info.limits.max_ef, value: ef });
  const truthSel = info.index.has_labels
    ? el('select#truth', { id: 'truth' }, classOptions(info, '(not judged)', truth).map((o) => {
        if (o.value === '') return o;
        o.textContent = o.textContent.replace(/ \(\d+\)$/, '');
        return o;
      }))
    : null;
  // The server's `labels` filter: results only from this class.
  const onlySel = info.index.has_labels
    ? el('select#only', { id: 'only' }, classOptions(info, '(any class)', only))
    : null;
  const searchBtn = el('button#search', { id: 'search', type: 'button' }, 'Search');
  const clearBtn = el('button#clear-box', { id: 'clear-box', type: 'button' }, 'Whole image');
  const canvas = el('canvas#query-canvas', { id: 'query-canvas', width: 1, height: 1 });
  const placeholder = el('p#drop-hint.muted', { id: 'drop-hint' }, info.faces
    ? 'Choose an image, drop one here, or paste one (Ctrl+V). Then click a facial region the server finds (solid: the subject\'s left, dashed: right), or drag a box, to search by it.'
    : 'Choose an image, drop one here, or paste one (Ctrl+V). Then drag a box on it to search by that region.');
  const legendSlot = el('div#legend-slot', { id: 'legend-slot' });
  const stage = el('div#stage.stage', { id: 'stage' }, canvas, placeholder, legendSlot);
  const boxText = el('span#box.muted', { id: 'box' });
  const status = el('span#status.muted', { id: 'status' });
  const qerr = el('p#query-error.error', { id: 'query-error', role: 'alert', hidden: true });
  const faceGrades = el('div#face-grades-slot', { id: 'face-grades-slot' });
  // What became of the face finding: none found, or why it failed.
  const facesNote = el('p#faces-note.muted', { id: 'faces-note', hidden: true });
  const noteFaces = (text) => {
    facesNote.textContent = text || '';
    facesNote.hidden = !text;
  };
  const results = el('div#results.grid', { id: 'results' });
  // Why the results are not marked green and red, when they cannot be.
  const judgeNote = el('div#judge-slot', { id: 'judge-slot' });
  // The query's grade (read-out) and its neighbours' score, when there are any.
  const grades = el('div#grade-slot', { id: 'grade-slot' });

  const showBox = () => {
    const named = current.region && facialRegions().find((r) => regionText(r.region) === regionText(current.region));
    const name = named ? `${named.label}${named.side ? ` (${named.side})` : ''}: ` : '';
    boxText.textContent = current.region ? `${name}region x,y,w,h = ${regionText(current.region)} (image pixels)` : current.bitmap ? 'whole image' : '';
  };
  const paint = () => {
    const has = Boolean(current.bitmap);
    canvas.hidden = !has;
    placeholder.hidden = has || Boolean(current.file);
    if (has) {
      // As many backing pixels as the screen shows (at most 8 per image
      // pixel), so that lines and grades drawn over a small photo are sharp.
      const shown = canvas.getBoundingClientRect().width || 540;
      const up = Math.min(8, Math.max(1, Math.ceil((shown * (window.devicePixelRatio || 1)) / current.bitmap.width)));
      canvas.dataset.up = String(up);
      canvas.width = current.bitmap.width * up;
      canvas.height = current.bitmap.height * up;
      canvas.classList.toggle('px', current.bitmap.width < 100);
      draw(canvas, current.region);
    } else if (current.file) {
      placeholder.hidden = false;
      placeholder.textContent = `${current.file.name || 'pasted file'}: the browser cannot show this file as an image.`;
    }
    showBox();
    const key = has ? legend() : null;
    legendSlot.replaceChildren(...(key ? [key] : []));
    const table = gradeTables((region) => {
      current.region = region;
      paint();
      run();
    }, info.model && info.model.graded_range);
    faceGrades.replaceChildren(...(table ? [table] : []));
  };
  const showResult = () => {
    qerr.hidden = !current.error;
    qerr.textContent = current.error || '';
    results.replaceChildren();
    grades.replaceChildren();
    judgeNote.replaceChildren();
    results.dataset.state = current.error ? 'error' : current.result ? 'done' : '';
    if (!current.result) return;
    const r = current.result;
    const line = gradeLine({ readout: r.readout_score, predicted: r.predicted_score, learnt: info.model && info.model.graded_labels });
    if (line) grades.append(line);
    // Why the photo was graded whole (no face found): the grade alone
    // read as a grade of what the read-out learnt.
    if (r.note) grades.append(el('p#grade-note.muted', { id: 'grade-note' }, r.note));
    results.dataset.region = regionText(r.region);
    results.dataset.query = `image:${r.name}:${regionText(r.region)}`;
    const only = onlySel ? onlySel.value : '';
    const { truth, note } = judging(info, truthSel ? truthSel.value : '', only);
    if (note && r.hits.length) judgeNote.append(note);
    results.append(...r.hits.map((h) => card(info, h, { rank: h.rank, distance: h.distance, truth, k: kIn.value, ef: efIn.value, label: only })));
    if (!r.hits.length) results.append(emptyNote(info, onlySel ? onlySel.value : '', hashFor('/query', { ...state(), only: '' })));
    showTimes();
  };
  const showTimes = () => {
    const r = current.result;
    if (!r || r.round_trip_ms === null) return;
    results.dataset.tookMs = r.took_ms;
    results.dataset.roundTripMs = r.round_trip_ms;
    status.textContent = `${r.hits.length} results: ${r.took_ms.toFixed(1)} ms on the server, ${r.round_trip_ms.toFixed(1)} ms from the page`;
  };
  const keyOf = () => `${current.file ? current.file.name + current.file.size + current.file.lastModified : ''}|${kIn.value}|${efIn.value}|${onlySel ? onlySel.value : ''}|${regionText(current.region)}`;

  const run = async () => {
    if (!current.file) return;
    remember();
    const key = keyOf();
    results.dataset.state = 'running';
    status.textContent = 'searching…';
    const t0 = performance.now();
    try {
      const problem = limitsProblem(info, kIn.value, efIn.value);
      if (problem) throw new Error(problem);
      const r = await searchImage(current.file, { k: kIn.value, ef: efIn.value, labels: onlySel ? onlySel.value : '', region: regionText(current.region) });
      r.region = current.region;
      r.name = current.file.name || 'pasted';
      current.result = r;
      current.error = null;
    } catch (e) {
      current.result = null;
      current.error = e.message;
      status.textContent = '';
    }
    current.key = key;
    if (current.result) current.result.round_trip_ms = null;
    showResult();
    // Request sent to cards built: what the person waits for.
    if (current.result) {
      current.result.round_trip_ms = performance.now() - t0;
      showTimes();
    }
  };

  const choose = async (file) => {
    if (!file) return;
    current.file = file;
    current.region = null;
    current.result = null;
    current.error = null;
    current.bitmap = null;
    current.faces = [];
    current.domain = null;
    // The last photo's answers go at once: finding faces in a large photo
    // takes seconds, and they must not pass for this one's.
    showResult();
    noteFaces('');
    status.textContent = 'reading the photo…';
    try {
      current.bitmap = await createImageBitmap(file);
    } catch {
      // Not an image the browser can draw: the server still says why.
    }
    paint();
    if (info.faces && current.bitmap) {
      status.textContent = 'finding faces…';
      try {
        const found = await findFaces(file);
        current.faces = found.faces;
        current.domain = found.score_domain || null;
        if (!current.faces.length) noteFaces('No face found in this photo: drag a box to search by a region.');
      } catch (e) {
        // The search below reports a bad image itself.
        noteFaces(`Faces: ${e.message}`);
      }
    }
    paint();
    await run();
  };

  fileIn.addEventListener('change', () => choose(fileIn.files[0]));
  searchBtn.addEventListener('click', run);
  clearBtn.addEventListener('click', () => {
    current.region = null;
    paint();
    run();
  });
  for (const input of [kIn, efIn, onlySel].filter(Boolean)) input.addEventListener('change', run);
  if (truthSel) truthSel.addEventListener('change', () => { remember(); showResult(); });

  stage.addEventListener('dragover', (e) => { e.preventDefault(); stage.classList.add('over'); });
  stage.addEventListener('dragleave', () => stage.classList.remove('over'));
  stage.addEventListener('drop', (e) => {
    e.preventDefault();
    stage.classList.remove('over');
    choose(e.dataTransfer.files[0]);
  });
  const onPaste = (e) => {
    const f = [...(e.clipboardData?.files || [])][0];
    if (f && view.contains(stage)) choose(f);
  };
  document.onpaste = onPaste;

  // Drag a box: pointer events on the canvas, in image pixels.
  let start = null;
  canvas.addEventListener('pointerdown', (e) => {
    if (!current.bitmap) return;
    canvas.setPointerCapture(e.pointerId);
    start = imagePoint(canvas, e);
    e.preventDefault();
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!start) return;
    const [x, y] = imagePoint(canvas, e);
    const box = [Math.min(x, start[0]), Math.min(y, start[1]), Math.abs(x - start[0]), Math.abs(y - start[1])].map(Math.round);
    draw(canvas, box);
  });
  canvas.addEventListener('pointerup', (e) => {
    if (!start) return;
    const [x, y] = imagePoint(canvas, e);
    const box = [Math.min(x, start[0]), Math.min(y, start[1]), Math.abs(x - start[0]), Math.abs(y - start[1])].map(Math.round);
    start = null;
    const picked = box[2] < 2 && box[3] < 2 ? regionAt([x, y]) : null;
    if (picked) {
      current.region = picked.region;
      paint();
      run();
    } else if (box[2] >= 2 && box[3] >= 2) {
      current.region = box;
      paint();
      run();
    } else {
      draw(canvas, current.region);
    }
  });

  view.replaceChildren(
    el(
      'section.query',
      {},
      stage,
      el(
        'div.controls',
        {},
        el('label.file', {}, 'Image ', fileIn),
        el('label', {}, 'k ', kIn),
        el('label', {}, 'ef ', efIn),
        onlySel ? el('label', {}, 'Only class ', onlySel) : null,
        truthSel ? el('label', {}, 'My query is class ', truthSel) : null,
        el('div', {}, searchBtn, ' ', clearBtn),
        boxText,
        status,
        grades,
        faceGrades,
        facesNote,
        qerr,
      ),
    ),
    judgeNote,
    results,
  );
  paint();
  // Back from a result: show the answer we had, or ask again if the URL
  // asks for something else.
  if (current.file && (current.result || current.error)) {
    if (current.key === keyOf()) showResult();
    else await run();
  }
  return results;
}
