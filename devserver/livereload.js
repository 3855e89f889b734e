// devserver live reload: keeps this page in step with the files on disk.
// The server sends Server-Sent Events on /__devserver__/events:
//   "reload": a page, script or dynamic module changed -> reload the page;
//   "css" (data: JSON list of URL paths): swap those stylesheets in place.
(function () {
  "use strict";
  if (window.devserverLiveReload || !window.EventSource) {
    return;
  }
  var source = new EventSource("/__devserver__/events");
  window.devserverLiveReload = source;

  source.addEventListener("reload", function () {
    location.reload();
  });

  source.addEventListener("css", function (event) {
    var paths = JSON.parse(event.data);
    // A sheet pulled in by @import is not a <link>: refresh every sheet then.
    if (swapStylesheets(paths) === 0) {
      swapStylesheets(null);
    }
  });

  // Replace each matching <link rel=stylesheet> by a copy with a cache-busting
  // query; the old one goes once the new one has loaded, so nothing flashes.
  function swapStylesheets(paths) {
    var swapped = 0;
    var links = document.querySelectorAll("link[href]");
    Array.prototype.forEach.call(links, function (link) {
      if (!/(^|\s)stylesheet(\s|$)/i.test(link.rel) || link.dataset.devserverStale) {
        return;
      }
      var url = new URL(link.href, location.href);
      if (url.origin !== location.origin) {
        return;
      }
      if (paths && paths.indexOf(decodeURIComponent(url.pathname)) < 0) {
        return;
      }
      url.searchParams.set("devserver", String(Date.now()));
      var fresh = link.cloneNode(false);
      fresh.href = url.href;
      link.dataset.devserverStale = "1";
      var done = function () { link.remove(); };
      fresh.addEventListener("load", done);
      fresh.addEventListener("error", done);
      link.after(fresh);
      swapped += 1;
    });
    return swapped;
  }
})();
