// Runs inside a page of the built book (tests/test_browser.py evaluates it with Playwright, once per window
// width). Returns {problems: [...], warnings: {...}, nav, nav_current, nav_visible, colab, favicon}: the
// problems fail the test, the rest is checked or reported on the Python side. Plain ES2020, no dependencies.
// options.desktop: the window is wide enough (1200 px and more) for both sidebars and an output table of about
// 105 characters; there outputs must fit unscrolled and tables show every column. Narrower, outputs may
// scroll inside their own box, but no line of an output may wrap.
async (options = {}) => {
  const desktop = options.desktop !== false;
  const article = document.querySelector('article.bd-article');
  const out = {problems: [], altless_outputs: 0, sideways: {}};
  const say = (message) => out.problems.push(message);
  if (!article) {
    say('no article.bd-article: the theme changed, and the checks below cannot run');
    return out;
  }
  const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms));
  const frame = () => new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  const describe = (el) => {
    const text = (el.innerText || el.getAttribute('alt') || el.getAttribute('src') || '').replace(/\s+/g, ' ');
    const classes = typeof el.className === 'string' ? el.className.trim().split(/\s+/).slice(0, 3) : [];
    const section = el.closest('section[id]');
    return `${[el.tagName.toLowerCase(), ...classes.filter(Boolean)].join('.')}` +
      `${section ? ' in #' + section.id : ''} "${text.trim().slice(0, 60)}"`;
  };

  // Images: load the lazy ones now; every image must have pixels.
  const images = [...document.images];
  images.forEach(img => { img.loading = 'eager'; });
  await Promise.race([Promise.all(images.map(img => img.decode().catch(() => null))), sleep(10000)]);
  for (const img of images) {
    if (!img.complete || img.naturalWidth === 0) say(`broken image: ${img.getAttribute('src')}`);
  }
  // Alt text: myst-nb writes the file name when a cell sets none; that counts as none.
  for (const img of article.querySelectorAll('img')) {
    const alt = (img.getAttribute('alt') || '').trim();
    if (alt && !/(^|\/)_images\/|\.(png|jpe?g|gif|svg|webp)$/i.test(alt)) continue;
    if (img.closest('.cell_output')) out.altless_outputs += 1;
    else say(`image without alt text: ${img.getAttribute('src')}`);
  }

  // Math: MathJax must have loaded (from the book, offline) and typeset every formula without an error.
  const formulas = [...article.querySelectorAll('.math')];
  if (formulas.length) {
    const ready = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
    for (const start = performance.now(); !ready() && performance.now() - start < 8000;) await sleep(50);
    if (!ready()) {
      const src = [...document.scripts].map(s => s.src).find(s => /mathjax/i.test(s)) || 'nowhere';
      say(`math not rendered: MathJax did not load (it comes from ${src})`);
    } else {
      await Promise.race([MathJax.startup.promise, sleep(15000)]);
      const raw = formulas.filter(f => !f.querySelector('mjx-container'));
      if (raw.length) say(`math not rendered: ${raw.length} of ${formulas.length} formulas, e.g. ${describe(raw[0])}`);
      const errors = article.querySelectorAll('mjx-merror');
      if (errors.length) say(`math error: ${describe(errors[0].closest('.math') || errors[0])}`);
    }
  }

  // Tracebacks and warnings rendered in the page.
  for (const el of article.querySelectorAll('.output.traceback, .output.error')) {
    say(`rendered traceback: ${describe(el)}`);
  }
  if (article.innerText.includes('Traceback (most recent call last)')) {
    say('rendered traceback: the page shows "Traceback (most recent call last)"');
  }
  for (const el of article.querySelectorAll('.output.stderr')) {
    if (/\b[A-Z]\w*Warning\b/.test(el.innerText)) say(`warning in an output: ${describe(el)}`);
  }

  // Everything below is measured with every dropdown and hidden cell open.
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  await frame();
  const column = article.getBoundingClientRect();
  // Decorations hidden or placed on purpose, and MathJax's inner boxes (its container is checked).
  const ignored = ['mjx-assistive-mml', 'mjx-container *', '.visually-hidden', '.sr-only', '.headerlink', '.copybtn',
                   '.toggle-button'].join(', ');
  const scrolls = (overflow) => overflow === 'auto' || overflow === 'scroll';
  const reported = new Set();
  const insideReported = (el) => {
    for (let a = el.parentElement; a && a !== article; a = a.parentElement) if (reported.has(a)) return true;
    return false;
  };
  // How far the visible content of `el` reaches: the boxes of its descendants and text, leaving out the
  // decorations and whatever a scrolling box inside `el` holds. (scrollWidth and scrollHeight also count
  // helpers that are invisible on purpose, such as MathJax's assistive MathML.)
  const contentExtent = (el) => {
    const extent = {right: -Infinity, top: Infinity, bottom: -Infinity};
    const add = (r) => {
      if (r.width <= 0 || r.height <= 0) return;
      extent.right = Math.max(extent.right, r.right);
      extent.top = Math.min(extent.top, r.top);
      extent.bottom = Math.max(extent.bottom, r.bottom);
    };
    const range = document.createRange();
    const walk = (node) => {
      for (const child of node.childNodes) {
        if (child.nodeType === Node.TEXT_NODE) {
          if (!child.data.trim()) continue;
          range.selectNodeContents(child);
          for (const r of range.getClientRects()) add(r);
        } else if (child.nodeType === Node.ELEMENT_NODE && !child.matches(ignored)) {
          for (const r of child.getClientRects()) add(r);
          const style = getComputedStyle(child);
          if (!scrolls(style.overflowX) && !scrolls(style.overflowY)) walk(child);
        }
      }
    };
    walk(el);
    return extent;
  };

  for (const el of article.querySelectorAll('*')) {
    if (el.matches(ignored) || el.getClientRects().length === 0) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden') continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    // 1. Content cut off: a box with overflow hidden (or clip) whose visible content reaches past it. Content
    //    that spills out of a box with overflow visible is not cut; rule 2 catches it if it leaves the column.
    const cutX = el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && /hidden|clip/.test(style.overflowX);
    const cutY = el.clientHeight > 0 && el.scrollHeight > el.clientHeight + 1 && /hidden|clip/.test(style.overflowY);
    if ((cutX || cutY) && !insideReported(el)) {
      const inner = {left: box.left + el.clientLeft, top: box.top + el.clientTop};
      inner.right = inner.left + el.clientWidth;
      inner.bottom = inner.top + el.clientHeight;
      const reach = contentExtent(el);
      const past = Math.max(cutX ? reach.right - inner.right : 0,
                            cutY ? Math.max(inner.top - reach.top, reach.bottom - inner.bottom) : 0);
      if (past > 1) {
        say(`clipped: ${describe(el)} cuts off content ${Math.round(past)} px past its box ` +
            `(overflow: ${style.overflowX} ${style.overflowY})`);
        reported.add(el);
        continue;
      }
    }
    // 2. Past the content column, unless a scrolling box inside the column holds it.
    if ((box.right > column.right + 1 || box.left < column.left - 1) && !insideReported(el)) {
      let held = false;
      for (let a = el.parentElement; a && a !== article && !held; a = a.parentElement) {
        held = scrolls(getComputedStyle(a).overflowX);
      }
      if (!held) {
        say(`clipped: ${describe(el)} spans x=${Math.round(box.left)}..${Math.round(box.right)}, outside the ` +
            `content column x=${Math.round(column.left)}..${Math.round(column.right)}`);
        reported.add(el);
      }
    }
  }

  // 3. Outputs are read whole: a line whose meaning depends on alignment (a table row: two or more spaces
  //    inside the line; a rule such as ======) never wraps. On a desktop a cell output's pre never scrolls
  //    sideways and prose lines may wrap (custom.css sets pre-wrap there); narrower, outputs scroll inside
  //    their box and no line wraps at all (a torchinfo row or a log line broken in two loses its columns).
  const aligned = (line) => !desktop || /\S {2,}\S/.test(line) || /([=\-─━_*#+])\1{9,}/.test(line);
  const wrappedAlignedLines = (pre) => {
    const lines = [];
    let line = null;
    const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    for (let node; (node = walker.nextNode());) {
      for (let i = 0; ;) {
        const newline = node.data.indexOf('\n', i);
        const stop = newline === -1 ? node.data.length : newline;
        if (stop > i) {
          line = line || {text: '', start: [node, i]};
          line.text += node.data.slice(i, stop);
          line.end = [node, stop];
        }
        if (newline === -1) break;
        if (line) lines.push(line);
        line = null;
        i = newline + 1;
      }
    }
    if (line) lines.push(line);
    const range = document.createRange();
    const rows = ({start, end}) => {
      range.setStart(...start);
      range.setEnd(...end);
      const tops = [...range.getClientRects()].filter(r => r.width > 0).map(r => r.top).sort((a, b) => a - b);
      return tops.filter((top, k) => k === 0 || top > tops[k - 1] + 3).length;
    };
    return lines.filter(l => aligned(l.text) && rows(l) > 1).map(l => l.text);
  };
  for (const pre of article.querySelectorAll('.cell_output pre')) {
    if (!pre.getClientRects().length) continue;
    if (desktop && pre.scrollWidth > pre.clientWidth + 1) {
      const longest = Math.max(...pre.textContent.split('\n').map(l => l.length));
      say(`output too wide: ${describe(pre)} needs ${pre.scrollWidth} px (longest line ${longest} characters) ` +
          `in a ${pre.clientWidth} px box`);
    }
    const broken = wrappedAlignedLines(pre);
    if (broken.length) {
      say(`output ${desktop ? 'table ' : ''}wraps: ${broken.length} ${desktop ? 'aligned ' : ''}line(s) of ${describe(pre)} do not fit the ` +
          `${pre.clientWidth} px box, e.g. "${broken[0].trim().slice(0, 50)}" (${broken[0].length} characters)`);
    }
  }
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth + 1) {
    say(`the page scrolls sideways: ${page.scrollWidth} px wide in a ${window.innerWidth} px window`);
  }

  // Boxes a reader must scroll sideways to read whole. On a desktop a table that does so fails (its last
  // columns are off screen, and a reader does not see the scroll bar under a long table); narrower, tables
  // scroll inside their own box. Code cells and formulas are reported as warnings.
  for (const el of article.querySelectorAll('*')) {
    if (el.matches(ignored) || !el.getClientRects().length || el.closest('.cell_output')) continue;
    if (scrolls(getComputedStyle(el).overflowX) && el.scrollWidth > el.clientWidth + 1) {
      const what = el.closest('.cell_input') ? 'code cell' : el.closest('.math, mjx-container') ? 'formula'
        : el.matches('table') || el.querySelector('table') ? 'table'
        : el.matches('pre') ? 'code block' : el.tagName.toLowerCase();
      if (what === 'table' && desktop) {
        const headers = [...el.querySelectorAll('th')].filter(th => th.getBoundingClientRect().right >
                                                                    el.getBoundingClientRect().right + 1);
        say(`table too wide: ${describe(el)} needs ${el.scrollWidth} px in a ${el.clientWidth} px box` +
            (headers.length ? `; off screen: ${headers.map(th => th.innerText.trim()).join(', ')}` : ''));
        continue;
      }
      const seen = out.sideways[what] || {count: 0, widest: 0, box: el.clientWidth};
      seen.count += 1;
      if (el.scrollWidth > seen.widest) Object.assign(seen, {widest: el.scrollWidth, box: el.clientWidth});
      out.sideways[what] = seen;
    }
  }

  // The page's frame: one search field at most, and nothing laid over the navigation (pydata-sphinx-theme
  // 0.17 with sphinx-book-theme 1.3 added a second "Search" strip above the layout, over the sidebar's title).
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden' &&
    el.getBoundingClientRect().width > 0;
  const searches = [...document.querySelectorAll('.search-button-field, .bd-search input')].filter(shown);
  if (searches.length > 1) say(`${searches.length} search fields are shown (${searches.map(describe).join('; ')})`);
  const nav = document.querySelector('nav.bd-docs-nav');
  const sidebar = document.querySelector('.bd-sidebar-primary');
  if (nav && shown(nav)) {
    // The first things of the sidebar (its search field, its title link) and the first link of the toc.
    const firsts = [sidebar && sidebar.querySelector('.search-button-field, .bd-search'),
                    sidebar && sidebar.querySelector('a'), [...nav.querySelectorAll('a')].find(shown)];
    for (const el of firsts.filter(el => el && shown(el))) {
      const r = el.getBoundingClientRect();
      const x = r.left + Math.min(r.width / 2, 20), y = r.top + r.height / 2;
      if (y < 0 || y > window.innerHeight || x < 0 || x > window.innerWidth) continue;
      const top = document.elementFromPoint(x, y);
      if (top && top !== el && !el.contains(top)) {
        say(`the navigation is covered: ${describe(top)} lies over ${describe(el)}`);
      }
    }
  }
  out.favicon = [...document.querySelectorAll('link[rel~="icon"]')].map(l => l.href);

  // Navigation sidebar and launch links, as absolute addresses without fragments.
  out.nav_visible = !!nav && nav.getClientRects().length > 0 && nav.getBoundingClientRect().width > 0;
  out.nav = nav ? [...nav.querySelectorAll('a.reference.internal')].map(a => a.href.split('#')[0]) : [];
  out.nav_current = nav ? [...nav.querySelectorAll('a.current')].map(a => a.href.split('#')[0]) : [];
  out.colab = [...document.querySelectorAll('a[href*="colab.research.google.com"]')].map(a => a.href);
  return out;
}
