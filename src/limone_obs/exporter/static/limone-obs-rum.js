/*
 * limone-obs real-user timing (RUM). Licence: the project's own (no third-party code).
 *
 * Include it with the Jinja global {{ limone_obs_rum() }}, or as a plain static file:
 *   <script src="/rum.js" data-beacon="/rum" data-page="TOKEN" defer></script>
 * where TOKEN is limone_obs.exporter.rum.page_token(app, "/the/url/rule") (the server
 * accepts only tokens it signed, so a page label is never a URL the browser chose).
 *
 * After the load event it sends one beacon with the navigation phases, in seconds since
 * the navigation started: ttfb, fcp, dom_content_loaded, load. When the page is first
 * hidden it sends the largest contentful paint (lcp), which is final only then. The app
 * adds named marks: limoneObs.mark("ai_answer_shown") records seconds since the
 * navigation started, limoneObs.mark("ai_answer_shown", t0) seconds since t0 (a
 * performance.now() value taken when the user asked). The server accepts only the mark
 * names it was configured with (LIMONE_OBS_RUM_MARKS).
 */
(function () {
  "use strict";
  var tag = document.currentScript;
  var perf = window.performance;
  var noop = { mark: function () {} };
  if (!tag || !perf || !perf.now || !navigator.sendBeacon) {
    window.limoneObs = noop;
    return;
  }
  var beacon = tag.getAttribute("data-beacon");
  var page = tag.getAttribute("data-page");
  if (!beacon || !page) {
    window.limoneObs = noop;
    return;
  }
  var pending = {};
  var loaded = false;
  var lcp = null;
  var lcpSent = false;

  function seconds(ms) {
    return Math.round(ms) / 1000;
  }

  function send(values) {
    try {
      var body = JSON.stringify({ p: page, v: values });
      // text/plain keeps the beacon a "simple" request: no CORS preflight.
      navigator.sendBeacon(beacon, new Blob([body], { type: "text/plain" }));
    } catch (e) {
      /* timing must never break the page */
    }
  }

  function navigationPhases() {
    var v = {};
    var nav = perf.getEntriesByType ? perf.getEntriesByType("navigation")[0] : null;
    if (nav) {
      v.ttfb = seconds(nav.responseStart);
      v.dom_content_loaded = seconds(nav.domContentLoadedEventEnd);
      v.load = seconds(nav.loadEventEnd);
    } else if (perf.timing) {
      var t = perf.timing;
      v.ttfb = seconds(t.responseStart - t.navigationStart);
      v.dom_content_loaded = seconds(t.domContentLoadedEventEnd - t.navigationStart);
      v.load = seconds(t.loadEventEnd - t.navigationStart);
    }
    var paint = perf.getEntriesByName ? perf.getEntriesByName("first-contentful-paint")[0] : null;
    if (paint) {
      v.fcp = seconds(paint.startTime);
    }
    return v;
  }

  function onLoad() {
    // loadEventEnd is set only once the load handlers have returned: wait one task.
    setTimeout(function () {
      loaded = true;
      var v = navigationPhases();
      for (var name in pending) {
        if (Object.prototype.hasOwnProperty.call(pending, name)) {
          v[name] = pending[name];
        }
      }
      pending = {};
      send(v);
    }, 0);
  }

  function onHidden() {
    if (document.visibilityState === "hidden" && !lcpSent && lcp !== null) {
      lcpSent = true;
      send({ lcp: seconds(lcp) });
    }
  }

  window.limoneObs = {
    mark: function (name, since) {
      if (typeof name !== "string") {
        return;
      }
      var value = seconds(perf.now() - (typeof since === "number" ? since : 0));
      if (loaded) {
        var v = {};
        v[name] = value;
        send(v);
      } else {
        pending[name] = value;
      }
    }
  };

  try {
    new PerformanceObserver(function (list) {
      var entries = list.getEntries();
      if (entries.length) {
        lcp = entries[entries.length - 1].startTime;
      }
    }).observe({ type: "largest-contentful-paint", buffered: true });
  } catch (e) {
    /* no LCP in this browser */
  }
  document.addEventListener("visibilitychange", onHidden);
  window.addEventListener("pagehide", function () {
    // pagehide fires before visibilitychange in some browsers: report hidden either way.
    if (!lcpSent && lcp !== null) {
      lcpSent = true;
      send({ lcp: seconds(lcp) });
    }
  });
  if (document.readyState === "complete") {
    onLoad();
  } else {
    window.addEventListener("load", onLoad);
  }
})();
