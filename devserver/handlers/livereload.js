// devserver live reload, compact on purpose: served without comments and indentation,
// it must stay under 4 KiB (so: keep every string, regex and comment on one line).
// One event stream per browser: a SharedWorker running this file holds it for all tabs
// (else the tab holding a Web Lock, over a BroadcastChannel). Events: hello {instance, failing},
// reload|css|app [urls], failed {file, line, message}.
(g => {
  const NAME = "devserver", KEY = NAME + "-scroll", py = p => /\.py$/.test(p), dec = decodeURIComponent;

  // The stream, reopened with back-off; another server run reloads every tab.
  const stream = send => {
    let delay = 250, id;
    const open = () => {
      const s = new EventSource("/__devserver__/events");
      s.onerror = () => {
        s.close();
        send(["down"]);
        setTimeout(open, delay);
        delay = Math.min(delay*2, 4e3);
      };
      for (const type of ["hello", "reload", "css", "app", "failed"]) s.addEventListener(type, e => {
        const data = JSON.parse(e.data);
        if (type == "hello") {
          if (id && id != data.instance) send(["restart"]);
          id = data.instance;
          delay = 250;
        }
        send([type, data]);
      });
    };
    open();
  };

  // Relays to the tabs; returns a greeter that tells a new tab what it missed.
  const hub = post => {
    const state = [["down"]];
    stream(m => {
      const [t, data] = m;
      if (t == "hello" || t == "down") state[0] = m;
      if (t == "hello" && state[1] && !data.failing) state.length = 1, post(["app", []]);  // fixed while away
      if (t == "failed") state[1] = m;
      if (t == "restart" || t == "app" || t == "reload" && data.some(py)) state.length = 1;
      post(m);
    });
    return to => state.forEach(to);
  };

  if (!g.document) {  // the SharedWorker
    const ports = new Set, greet = hub(m => ports.forEach(p => p.postMessage(m)));
    onconnect = e => {
      const p = e.ports[0];
      ports.add(p);
      greet(m => p.postMessage(m));
      p.onmessage = () => ports.delete(p);  // the tab left
    };
    return;
  }
  if (g.devserverLiveReload || !g.EventSource) return;
  const doc = document, me = doc.currentScript, page = me.dataset.page || "static", loc = location, here = loc.href;
  const api = g.devserverLiveReload = {page}, ss = sessionStorage, scrolls = page != "error";  // error pages: see below
  let box;

  // Scroll: saved before our reloads, put back once the page (not an error page) is back. An
  // error page loads its URL again rather than reload: the browser would restore *its* scroll.
  const reload = () => {
    if (scrolls) ss[KEY] = JSON.stringify([here, scrollX, scrollY]);
    scrolls || loc.hash ? loc.reload() : loc.replace(here);
  };
  if (scrolls) {
    const saved = JSON.parse(ss[KEY] || "[]"), back = () => saved[0] == here && scrollTo(saved[1], saved[2]);
    delete ss[KEY];
    back();
    addEventListener("load", back);
  }

  const on = ([type, data]) => {
    if (type == "hello" || type == "down") api.connected = type == "hello";
    else if (type == "restart") reload();
    else if (type == "failed") show(data);  // also on an error page: a reload would get this again, and again
    else changed(data, type == "app");
  };

  // .css: swapped; images: loaded again; .py: app pages reload; .html: pages at that path; else all.
  // An "app" event (the APP answers with new code or templates) reloads app and error pages, whatever its files,
  // even none: a fix made while the stream was away (see hub), a restart of everything (the dashboard's R).
  const changed = (urls, app) => {
    const css = urls.filter(p => /\.css$/i.test(p)), img = urls.filter(p => /\.(png|jpe?g|gif|svg|webp|avif|ico)$/i.test(p)),
      path = dec(loc.pathname).replace(/\/$/, "/index.html");
    if (box && (app || urls.some(py))) box = box.remove();
    if (app ? page != "static" : page == "error" || urls.some(p => py(p) ? page == "app" : /\.html?$/i.test(p) ? p == path : ![...css, ...img].includes(p))) return reload();
    if (css.length && !swap(css)) swap();
    img.length && images(img);
  };

  const url = (u, base = here) => new URL(u, base);
  // A project's file is served under a shorter URL (/static/site.css for /shop/static/site.css): a suffix matches.
  const ours = (u, urls, base) => (u = url(u, base)).origin == loc.origin && (!urls || urls.some(p => p.endsWith(dec(u.pathname))));
  const bust = (u, base) => (u = url(u, base), u.searchParams.set(NAME, Date.now()), u.href);

  // The old <link> leaves once its fresh copy has loaded: nothing flashes.
  const swap = urls => {
    let n = 0;
    for (const link of doc.querySelectorAll("link[rel~=stylesheet]:not([data-stale])")) if (ours(link.href, urls)) {
      const fresh = link.cloneNode();
      fresh.href = bust(link.href);
      link.dataset.stale = n++;
      fresh.onload = fresh.onerror = () => link.remove();
      link.after(fresh);
    }
    return n;
  };

  // <img> and CSS backgrounds (inline, or in same-origin sheets) load the image again.
  const images = urls => {
    for (const i of doc.images) if (ours(i.src, urls)) i.src = bust(i.src);
    const fix = (style, base) => {
      const v = style.backgroundImage || "", w = v.replace(/url\(["']?([^"')]+)["']?\)/g, (all, u) => ours(u, urls, base) ? `url("${bust(u, base)}")` : all);
      if (w != v) style.backgroundImage = w;
    };
    for (const e of doc.querySelectorAll("[style]")) fix(e.style);
    for (const s of doc.styleSheets) try {
      for (const r of s.cssRules) if (r.style) fix(r.style, s.href || here);
    } catch (e) {}  // a cross-origin sheet
  };

  // The overlay, as in Vite: the error over the page, which stays; the next good save clears it.
  const show = d => {
    box = box || doc.body.appendChild(doc.createElement("pre"));
    box.id = NAME + "-overlay";
    box.style.cssText = "position:fixed;inset:0;z-index:99999;overflow:auto;padding:2em;background:#300e;color:#fdd;white-space:pre-wrap";
    box.textContent = d.file + (d.line ? ":" + d.line : "") + "\n\n" + d.message;
    box.onclick = () => box = box.remove();
  };

  const start = () => {
    try {
      const worker = new SharedWorker(me.src, NAME), port = worker.port;
      worker.onerror = fallback;  // its script could not run (a Content-Security-Policy, say)
      port.onmessage = e => on(e.data);
      addEventListener("pagehide", () => port.postMessage(0));  // a tab back from the bfcache has a new port
    } catch (e) {  // no SharedWorker, or none allowed here
      fallback();
    }
  };
  const fallback = () => {
    if (g.BroadcastChannel && navigator.locks) {
      const chan = new BroadcastChannel(NAME);
      let greet;
      chan.onmessage = e => e.data ? on(e.data) : greet && greet(m => chan.postMessage(m));
      navigator.locks.request(NAME, () => {  // held until this tab goes; then the next one leads
        greet = hub(m => { chan.postMessage(m); on(m); });
        api.leader = true;
        return new Promise(() => {});
      });
      chan.postMessage(0);  // asks the leader what was missed
    } else stream(on);
  };
  start();
  addEventListener("pageshow", e => e.persisted && start());
})(self);
