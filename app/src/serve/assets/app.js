// likeness's page: a hash router over three views. The URL holds the state
// (#/?offset=60&label=3, #/query?k=10&region=22,32,40,28, #/item/123?k=12),
// so a view can be shared and the back button works.
import { getInfo } from './api.js';
import { renderQuery } from './query.js';
import { el, facts, hashFor, renderGallery, renderItem } from './views.js';

const view = document.getElementById('view');
const errorBox = document.getElementById('error');
let info = null;

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

export function go(path, params) {
  location.hash = hashFor(path, params);
}

function parse() {
  const h = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = h.split('?');
  return { path: path || '/', params: new URLSearchParams(qs || '') };
}

let seq = 0;
/** The path of the view last drawn (`/`, `/query`, `/item/7`). */
let shownPath = null;
async function route() {
  const mine = ++seq;
  // Not drawn until this route's frame is: without this, a test waiting
  // for the view it navigated to saw the previous one's mark and used
  // elements about to be replaced (CI, stop 32).
  delete view.dataset.ready;
  // Dimmed while the next view loads (the old one stayed as it was, so a
  // slow answer looked like a click that did nothing).
  view.classList.add('busy');
  const { path, params } = parse();
  showError('');
  for (const a of document.querySelectorAll('nav a')) {
    const target = a.dataset.nav;
    a.classList.toggle('active', (target === 'query' && path === '/query') || (target === 'gallery' && path !== '/query'));
  }
  const t0 = performance.now();
  try {
    if (!info) {
      info = await getInfo();
      const factsLine = document.getElementById('facts');
      factsLine.textContent = facts(info);
      factsLine.title = factsLine.textContent;
      if (!info.image_search) {
        // No model: no image search to offer; the header says why.
        document.getElementById('nav-query').hidden = true;
        const why = document.getElementById('no-image-search');
        why.textContent = `No image search: ${info.image_search_unavailable}.`;
        why.title = why.textContent;
        why.hidden = false;
      }
    }
    let shown;
    const item = path.match(/^\/item\/(\d+)$/);
    if (item) shown = await renderItem(view, info, item[1], params, go);
    else if (path === '/query') shown = await renderQuery(view, info, params, go);
    else shown = await renderGallery(view, info, params, go);
    if (mine !== seq) return;
    view.classList.remove('busy');
    // A link to another view starts at its top: a result clicked far down
    // the query's page opened the item's view as far down, past its photo
    // and controls (most of all on a phone). An entry already seen (the
    // back button) keeps the scroll the browser gives it.
    if (!(history.state && history.state.seen)) {
      history.replaceState({ ...(history.state || {}), seen: true }, '');
      if (shownPath !== null && path !== shownPath) window.scrollTo(0, 0);
    }
    shownPath = path;
    view.dataset.view = item ? 'item' : path === '/query' ? 'query' : 'gallery';
    view.dataset.route = location.hash;
    // For `make bench-serve` and the browser tests: when this view's
    // content was on screen (the frame after it was built).
    requestAnimationFrame(() => {
      view.dataset.renderedMs = String(performance.now() - t0);
      view.dataset.paintedAt = String(performance.now());
      view.dataset.ready = String(mine);
    });
    return shown;
  } catch (e) {
    if (mine !== seq) return;
    showError(e.message);
    // Not the previous view under this view's error (nor "Loading…"): it
    // passed for the answer to the link just followed.
    view.classList.remove('busy');
    view.replaceChildren(el('p#route-failed', { id: 'route-failed' }, el('a', { href: '#/' }, 'Back to the gallery')));
    view.dataset.view = 'error';
    view.dataset.route = location.hash;
    view.dataset.ready = String(mine);
  }
}

// At a phone's width the header's facts are cut to one line (app.css); a
// tap (or Enter) on them shows them whole, and another cuts them again.
// Only there are they a button: on a wide screen they are whole already.
const phone = matchMedia('(max-width: 600px)');
const factLines = () => document.querySelectorAll('#facts, #no-image-search');
function markFacts() {
  const open = document.querySelector('header').classList.contains('open');
  for (const line of factLines()) {
    if (phone.matches) {
      line.tabIndex = 0;
      line.setAttribute('role', 'button');
      line.setAttribute('aria-expanded', String(open));
    } else {
      line.removeAttribute('tabindex');
      line.removeAttribute('role');
      line.removeAttribute('aria-expanded');
    }
  }
}
function toggleFacts() {
  if (!phone.matches) return;
  document.querySelector('header').classList.toggle('open');
  markFacts();
}
for (const line of factLines()) {
  line.addEventListener('click', toggleFacts);
  line.addEventListener('keydown', (e) => {
    if (phone.matches && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      toggleFacts();
    }
  });
}
phone.addEventListener('change', markFacts);
markFacts();

window.addEventListener('hashchange', route);
route();
