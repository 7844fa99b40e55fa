/*! Refract SDK | Apache-2.0 | docs/sdk.md */
/*
 * Renders what Refract decides for the placeholders of a page ([data-refract-placement]): banners,
 * carousels and pop-ups, and reports what the visitor actually saw and did (impressions, clicks,
 * dismissals). Campaign-agnostic: one snippet for every page. It must never break the host page, so
 * every entry point is guarded, a slow or failed call leaves the page's own default content, and a
 * problem is logged once to console.debug at most.
 */
(function (win, doc) {
  'use strict';
  const earlier = win.refract;
  if (earlier && earlier.init) return; // loaded twice: the first copy stays in charge

  const script = doc.currentScript;
  const VISITOR = 'refract_vid';
  const CUSTOMER = 'refract_cid';
  const YEAR_S = 31536000;
  const MAX_BATCH = 50; // a beacon carries at most 64 KB
  let options = null;
  let visitor = null;
  let logged = false;
  let queue = [];
  let batchTimer = 0;
  let observer = null;
  let popupOpen = false;
  const counted = {}; // impressions already reported on this page view, by placement, campaign, variant
  const closed = {}; // pop-ups the visitor closed on this page view
  const watched = new WeakMap(); // element -> the item whose visibility it shows
  const originals = new WeakMap(); // placeholder -> the page's own children, put back on a default

  function debug(error) {
    if (logged) return;
    logged = true;
    try {
      console.debug('refract:', error);
    } catch (ignored) {}
  }

  // Every function the page or the browser calls goes through guard: nothing is thrown to the page.
  function guard(fn) {
    return function () {
      try {
        const result = fn.apply(this, arguments);
        return result && result.catch ? result.catch(debug) : result;
      } catch (error) {
        debug(error);
      }
    };
  }

  // --- identity: an anonymous visitor id, and the customer id once known ------------------------

  function stored(name, value) {
    try {
      if (value === undefined) return localStorage.getItem(name);
      if (value === null) localStorage.removeItem(name);
      else localStorage.setItem(name, value);
    } catch (blocked) {} // storage can be disabled; the cookie still works
    return null;
  }

  function cookie(name, value, maxAgeS) {
    if (value === undefined) {
      const found = doc.cookie.split('; ').find((pair) => pair.indexOf(name + '=') === 0);
      return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
    }
    doc.cookie = name + '=' + encodeURIComponent(value) + '; Max-Age=' + maxAgeS + '; Path=/; SameSite=Lax' +
      (location.protocol === 'https:' ? '; Secure' : '');
  }

  function uuid() {
    if (win.crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 15) | 64;
    bytes[8] = (bytes[8] & 63) | 128;
    const hex = Array.from(bytes, (b) => (b + 256).toString(16).slice(1)).join('');
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join('-');
  }

  function rememberVisitor(id) {
    cookie(VISITOR, id, YEAR_S); // rewritten on each page view: the year counts from the last visit
    stored(VISITOR, id);
    return id;
  }

  function knownVisitor() {
    const id = cookie(VISITOR) || stored(VISITOR);
    return rememberVisitor(id && /^v_[\w-]{8,64}$/.test(id) ? id : 'v_' + uuid());
  }

  // --- the API --------------------------------------------------------------------------------

  async function call(path, body) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), options.timeoutMs);
    try {
      const response = await fetch(options.baseUrl + path, {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + options.key, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        credentials: 'omit',
        signal: abort.signal,
      });
      if (!response.ok) throw new Error(path + ' answered ' + response.status);
      return response.status === 200 ? await response.json() : null; // the timeout covers the body too
    } finally {
      clearTimeout(timer);
    }
  }

  function report(kind, item, placementId, now) {
    queue.push({
      interaction_id: uuid(),
      kind: kind,
      customer_id: options.customerId,
      visitor_id: visitor,
      campaign_id: item.campaign_id,
      placement_id: placementId,
      token: item.token,
    });
    if (now) flush();
    else if (!batchTimer) batchTimer = setTimeout(guard(flush), options.batchDelayMs);
  }

  // A beacon outlives the page (a click navigates away) and never delays navigation. It cannot carry
  // an Authorization header, so the public key travels in the body; text/plain needs no preflight.
  function flush() {
    clearTimeout(batchTimer);
    batchTimer = 0;
    while (queue.length) {
      const url = options.baseUrl + '/v1/interactions';
      const body = JSON.stringify({ key: options.key, interactions: queue.splice(0, MAX_BATCH) });
      const sent = navigator.sendBeacon && navigator.sendBeacon(url, new Blob([body], { type: 'text/plain' }));
      if (!sent) {
        fetch(url, { method: 'POST', body: body, keepalive: true, credentials: 'omit' }).catch(debug);
      }
    }
  }

  // --- what is shown ----------------------------------------------------------------------------

  function element(tag, className, text) {
    const node = doc.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url, location.href);
      return url && /^https?:$/.test(parsed.protocol) ? parsed.href : null;
    } catch (invalid) {
      return null;
    }
  }

  // One item's content. Only the server's `html` is inserted as HTML: Refract renders it from its
  // sandboxed templates; every other field is text.
  function itemNode(item, placementId) {
    const content = item.content || {};
    const box = element('div', 'rf-item');
    if (content.html != null) {
      box.innerHTML = content.html;
    } else {
      if (content.image_url) {
        const image = element('img');
        image.src = content.image_url;
        image.alt = content.alt || content.title || '';
        box.append(image);
      }
      if (content.title) box.append(element('p', 'rf-title', content.title));
      if (content.text) box.append(element('p', 'rf-text', content.text));
      const href = safeUrl(content.cta_url);
      if (href) {
        const link = element('a', 'rf-cta', content.cta_label || content.title || href);
        link.href = href;
        box.append(link);
      }
    }
    box.addEventListener('click', guard((event) => {
      const link = event.target.closest && event.target.closest('a[href]');
      if (link && box.contains(link)) report('click', item, placementId, true); // the browser follows it
    }));
    watch(box, item, placementId);
    return box;
  }

  // An impression counts once per item per page view, when at least half of the item (or half of
  // the viewport, for items taller than that) has been visible for impressionDelayMs without a break.
  function watch(node, item, placementId) {
    watched.set(node, { item: item, placementId: placementId, timer: 0 });
    if (!win.IntersectionObserver) return setTimeout(guard(() => count(node)), options.impressionDelayMs);
    observer = observer || new IntersectionObserver(guard(seen), { threshold: [0, 0.25, 0.5, 0.75, 1] });
    observer.observe(node);
  }

  function seen(entries) {
    entries.forEach((entry) => {
      const state = watched.get(entry.target);
      const viewport = entry.rootBounds;
      const visible = entry.isIntersecting && (entry.intersectionRatio >= 0.5 ||
        (viewport && entry.intersectionRect.height >= viewport.height / 2));
      if (visible && !state.timer) {
        state.timer = setTimeout(guard(() => count(entry.target)), options.impressionDelayMs);
      } else if (!visible && state.timer) {
        clearTimeout(state.timer);
        state.timer = 0;
      }
    });
  }

  function count(node) {
    const state = watched.get(node);
    if (observer) observer.unobserve(node);
    if (!node.isConnected) return;
    const id = [state.placementId, state.item.campaign_id, state.item.variant].join('|');
    if (counted[id]) return;
    counted[id] = true;
    report('impression', state.item, state.placementId);
  }

  function button(className, label, text, onClick) {
    const node = element('button', className, text);
    node.type = 'button';
    node.setAttribute('aria-label', label);
    node.addEventListener('click', guard(onClick));
    return node;
  }

  function carousel(items, placementId, label) {
    const root = element('section', 'rf-carousel');
    root.setAttribute('aria-roledescription', 'carousel');
    root.setAttribute('aria-label', label);
    const track = element('div', 'rf-slides');
    track.setAttribute('aria-live', 'polite'); // the slide shown next is read out; it never rotates by itself
    const slides = items.map((item, index) => {
      const slide = itemNode(item, placementId);
      slide.setAttribute('role', 'group');
      slide.setAttribute('aria-roledescription', 'slide');
      slide.setAttribute('aria-label', index + 1 + ' of ' + items.length);
      return slide;
    });
    let current = 0;
    const show = (index) => {
      current = (index + slides.length) % slides.length;
      slides.forEach((slide, i) => (slide.hidden = i !== current));
    };
    track.append(...slides);
    root.append(track);
    if (slides.length > 1) {
      root.prepend(button('rf-prev', 'Previous offer', '\u2039', () => show(current - 1)));
      root.append(button('rf-next', 'Next offer', '\u203a', () => show(current + 1)));
      root.addEventListener('keydown', guard((event) => {
        const step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
        if (step) {
          show(current + step);
          event.preventDefault();
        }
      }));
    }
    show(0);
    return root;
  }

  function popup(item, placementId) {
    const id = placementId + '|' + item.campaign_id;
    if (popupOpen || closed[id]) return; // one dialog at a time, and a closed one stays closed
    popupOpen = true;
    const content = item.content || {};
    const before = doc.activeElement;
    const backdrop = element('div', 'rf-backdrop');
    const dialog = itemNode(item, placementId);
    dialog.classList.add('rf-popup');
    dialog.setAttribute('role', 'dialog');
    dialog.setAttribute('aria-modal', 'true');
    dialog.tabIndex = -1;
    const title = dialog.querySelector('.rf-title, h1, h2, h3');
    if (title) {
      title.id = title.id || 'rf-' + uuid();
      dialog.setAttribute('aria-labelledby', title.id);
    } else {
      dialog.setAttribute('aria-label', content.title || content.alt || 'Message');
    }
    const onKey = guard((event) => {
      if (event.key === 'Escape') close();
      else if (event.key === 'Tab') keepFocusInside(dialog, event);
    });
    const close = () => {
      doc.removeEventListener('keydown', onKey, true);
      backdrop.remove();
      popupOpen = false;
      closed[id] = true;
      report('dismiss', item, placementId, true);
      if (before && before.focus && before.isConnected) before.focus();
    };
    dialog.prepend(button('rf-close', 'Close', '\u00d7', close));
    backdrop.addEventListener('click', guard((event) => event.target === backdrop && close()));
    doc.addEventListener('keydown', onKey, true);
    backdrop.append(dialog);
    doc.body.append(backdrop);
    dialog.focus();
  }

  function keepFocusInside(dialog, event) {
    const focusable = dialog.querySelectorAll('a[href],button,input,select,textarea,[tabindex="0"]');
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    const active = doc.activeElement;
    if (event.shiftKey ? active === first || active === dialog : active === last) {
      (event.shiftKey ? last : first).focus();
      event.preventDefault();
    }
  }

  function render(placeholder, placement) {
    const placementId = placeholder.getAttribute('data-refract-placement');
    const items = placement && !placement.default && Array.isArray(placement.items) ? placement.items : [];
    if (!originals.has(placeholder)) originals.set(placeholder, Array.from(placeholder.childNodes));
    if (!items.length) {
      // the page's own content stays; put it back if an earlier decision replaced it
      if (placeholder.hasAttribute('data-refract-shown')) placeholder.replaceChildren(...originals.get(placeholder));
      placeholder.removeAttribute('data-refract-shown');
      return;
    }
    if (placement.kind === 'popup') {
      setTimeout(guard(() => popup(items[0], placementId)), placement.open_delay_ms || 0);
      return;
    }
    const node = placement.kind === 'multiple'
      ? carousel(items.slice(0, placement.max_items || items.length), placementId,
        placeholder.getAttribute('aria-label') || 'Offers')
      : itemNode(items[0], placementId);
    placeholder.replaceChildren(node);
    placeholder.setAttribute('data-refract-shown', items.map((item) => item.campaign_id).join(' '));
  }

  // --- the public surface -----------------------------------------------------------------------

  const STYLE = '.rf-item img{display:block;max-width:100%;height:auto}' +
    '.rf-carousel{display:flex;align-items:center;gap:.5rem}.rf-slides{flex:1}' +
    '.rf-carousel [hidden]{display:none!important}' +
    '.rf-backdrop{position:fixed;inset:0;z-index:2147483000;display:flex;align-items:center;' +
    'justify-content:center;background:rgba(0,0,0,.5)}' +
    '.rf-popup{position:relative;max-width:min(90vw,32rem);max-height:90vh;overflow:auto;' +
    'padding:1.5rem;border-radius:8px;background:#fff;color:#111}' +
    '.rf-close{position:absolute;top:.25rem;right:.5rem;border:0;background:none;font-size:1.5rem;cursor:pointer}';

  function ready() {
    return new Promise((resolve) => doc.readyState === 'loading'
      ? doc.addEventListener('DOMContentLoaded', resolve, { once: true })
      : resolve());
  }

  // Asks for every placeholder of the page in one call and renders the answer.
  async function refresh() {
    let ok = false;
    try {
      await ready();
      const placeholders = Array.from(doc.querySelectorAll('[data-refract-placement]'));
      const ids = Array.from(new Set(placeholders.map((p) => p.getAttribute('data-refract-placement'))))
        .filter(Boolean);
      if (ids.length) {
        const answer = await call('/v1/decisions', {
          customer_id: options.customerId,
          visitor_id: visitor,
          page: location.pathname,
          placements: ids,
        });
        const placements = (answer && answer.placements) || {};
        placeholders.forEach(guard((p) => render(p, placements[p.getAttribute('data-refract-placement')])));
      }
      ok = true;
    } catch (error) {
      debug(error); // the placeholders keep the page's own content
    }
    doc.dispatchEvent(new CustomEvent('refract:ready', { detail: { ok: ok } }));
    return ok;
  }

  function number(value, fallback) {
    const parsed = Number(value);
    return value != null && value !== '' && parsed >= 0 ? parsed : fallback;
  }

  function init(settings) {
    const given = settings || {};
    if (!given.key) throw new Error('no public key: set data-key on the script or refract.init({key})');
    const first = !options;
    options = {
      key: given.key,
      customerId: given.customerId || stored(CUSTOMER) || null,
      baseUrl: (given.baseUrl || (script && script.src ? new URL(script.src).origin : location.origin))
        .replace(/\/+$/, ''),
      timeoutMs: number(given.timeoutMs, 1500),
      impressionDelayMs: number(given.impressionDelayMs, 1000),
      batchDelayMs: number(given.batchDelayMs, 1000),
    };
    visitor = knownVisitor();
    if (first) {
      const style = element('style', null, STYLE);
      doc.head.append(style);
      win.addEventListener('pagehide', guard(flush));
      doc.addEventListener('visibilitychange', guard(() => doc.visibilityState === 'hidden' && flush()));
    }
    return refresh();
  }

  // Links the visitor's anonymous history to the customer (once) and uses the customer id from now on.
  async function identify(customerId) {
    if (!options) throw new Error('identify before init: set data-key on the script or call init first');
    const id = String(customerId);
    options.customerId = id;
    if (stored(CUSTOMER) !== id) {
      await call('/v1/identify', { visitor_id: visitor, customer_id: id });
      stored(CUSTOMER, id);
    }
  }

  // On sign-out: forget the customer and start a new anonymous visitor.
  function reset() {
    stored(CUSTOMER, null);
    if (options) {
      options.customerId = null;
      visitor = rememberVisitor('v_' + uuid());
    }
  }

  const api = {
    version: '1',
    init: guard(init),
    refresh: guard(() => (options ? refresh() : false)),
    identify: guard(identify),
    reset: guard(reset),
    visitorId: () => visitor,
  };
  win.refract = api;

  // `refract.push(...)`-style calls queued by the page before the script arrived run now, in order.
  const queued = Array.isArray(earlier) ? earlier : [];
  if (script && script.dataset.key) api.init(Object.assign({}, script.dataset));
  queued.forEach(guard((entry) => api[entry[0]] && api[entry[0]].apply(api, entry.slice(1))));
})(window, document);
