// Query by image: pick, drop or paste an image; optionally drag a box on it
// to search by that region (sent in image pixels whatever the display
// scale), or click one of the facial regions the server found (POST /faces);
// results as cards, judged green/red against "my query is class X".
import { findFaces, searchImage } from './api.js';
import { card, classOptions, el, gradeLine, hashFor } from './views.js';

// The chosen image and its last answer survive navigation (back button).
const current = { file: null, bitmap: null, region: null, result: null, key: null, error: null, faces: [] };

// The overlay's colours (likeness regions --overlay uses the same).
const COLOURS = { eye: '#00c8ff', under_eye: '#ff00c8', cheek: '#ffa000', brow: '#78ff50', nose: '#ffff00', mouth: '#ff3c3c' };

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
 * The faces' grades by the model's score read-out, left against right: a
 * table a face, a row a label (subject's left, right, left − right), or
 * null when the server gave no grades. A click on a grade searches by its
 * region.
 */
function gradeTables(pick) {
  if (!current.faces.some((f) => f.regions.some((r) => 'grade' in r))) return null;
  const fmt = (r) => (r && typeof r.grade === 'number' ? num(r.grade) : '—');
  const cell = (r, attrs = {}) => el('td', r && typeof r.grade === 'number'
    ? { ...attrs, class: 'pick', dataset: { region: regionText(r.region), grade: r.grade }, onclick: () => pick(r.region), title: 'search by this region' }
    : attrs, fmt(r));
  const tables = current.faces.map((f, i) => {
    const labels = [...new Set(f.regions.map((r) => r.label))];
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
  return el('div#face-grades', { id: 'face-grades' },
    el('p.muted', {}, "Grades by the model's score read-out (— : a label it did not learn from)"),
    tables);
}

function parseRegion(s) {
  if (!s) return null;
  const v = s.split(',').map((x) => parseInt(x, 10));
  return v.length === 4 && v.every((x) => Number.isFinite(x) && x >= 0) && v[2] > 0 && v[3] > 0 ? v : null;
}

function draw(canvas, box) {
  const ctx = canvas.getContext('2d');
  if (!current.bitmap) return;
  ctx.drawImage(current.bitmap, 0, 0);
  const thin = Math.max(1, Math.round(canvas.width / 400));
  for (const r of facialRegions()) {
    ctx.lineWidth = thin;
    ctx.strokeStyle = COLOURS[r.label] || '#ffffff';
    ctx.setLineDash(r.side === 'right' ? [4 * thin, 3 * thin] : []);
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
    const line = Math.max(1, Math.round(canvas.width / 150));
    for (const [colour, width] of [['#000000', line + 2], ['#ffffff', line]]) {
      ctx.lineWidth = width;
      ctx.strokeStyle = colour;
      ctx.strokeRect(x + line / 2, y + line / 2, Math.max(1, w - line), Math.max(1, h - line));
    }
  }
  ctx.textBaseline = 'top';
  const label = (text, x, y, size, colour) => {
    ctx.font = `${size}px system-ui, sans-serif`;
    ctx.fillStyle = 'rgba(0, 0, 0, 0.6)';
    ctx.fillRect(x, y, ctx.measureText(text).width + 4, size + 2);
    ctx.fillStyle = colour;
    ctx.fillText(text, x + 2, y + 1);
  };
  // Sized to each face, not to the photo: a group photo's small faces
  // once had their grades written over each other.
  current.faces.forEach((f, i) => {
    const size = Math.max(7, Math.round(f.box[2] / 9));
    if (current.faces.length > 1) label(String(i + 1), f.box[0], Math.max(0, f.box[1] - size - 3), Math.round(size * 1.3), '#ffffff');
    for (const r of f.regions.filter((x) => typeof x.grade === 'number')) {
      const [px, py] = r.corners[0];
      label(num(r.grade), px, py, size, COLOURS[r.label] || '#ffffff');
    }
  });
}

/** Pointer position in image pixels, whatever the canvas's display size. */
function imagePoint(canvas, ev) {
  const r = canvas.getBoundingClientRect();
  const x = ((ev.clientX - r.left) * canvas.width) / r.width;
  const y = ((ev.clientY - r.top) * canvas.height) / r.height;
  return [Math.min(Math.max(0, x), canvas.width), Math.min(Math.max(0, y), canvas.height)];
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
    if (next !== location.hash && shown !== regionText(current.region)) history.pushState(null, '', next);
    else history.replaceState(null, '', next);
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
  const stage = el('div#stage.stage', { id: 'stage' }, canvas, placeholder);
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
      canvas.width = current.bitmap.width;
      canvas.height = current.bitmap.height;
      // Small images (28×28 IDX digits and clothes) scaled up stay sharp.
      canvas.classList.toggle('px', current.bitmap.width < 100);
      draw(canvas, current.region);
    } else if (current.file) {
      placeholder.hidden = false;
      placeholder.textContent = `${current.file.name || 'pasted file'}: the browser cannot show this file as an image.`;
    }
    showBox();
    const table = gradeTables((region) => {
      current.region = region;
      paint();
      run();
    });
    faceGrades.replaceChildren(...(table ? [table] : []));
  };
  const showResult = () => {
    qerr.hidden = !current.error;
    qerr.textContent = current.error || '';
    results.replaceChildren();
    grades.replaceChildren();
    results.dataset.state = current.error ? 'error' : current.result ? 'done' : '';
    if (!current.result) return;
    const r = current.result;
    const line = gradeLine({ readout: r.readout_score, predicted: r.predicted_score, learnt: info.model && info.model.graded_labels });
    if (line) grades.append(line);
    results.dataset.region = regionText(r.region);
    results.dataset.query = `image:${r.name}:${regionText(r.region)}`;
    results.append(...r.hits.map((h) => card(info, h, { rank: h.rank, distance: h.distance, truth: truthSel ? truthSel.value : '', k: kIn.value, ef: efIn.value, label: onlySel ? onlySel.value : '' })));
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
        current.faces = (await findFaces(file)).faces;
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
