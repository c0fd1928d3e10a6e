/*
 * limone-obs real-user timing (RUM). Licence: the project's own (no third-party code).
 *
 * Include it with the Jinja global {{ limone_obs_rum() }}, or as a plain static file:
 *   <script src="/rum.js" data-beacon="/rum" data-page="TOKEN" defer></script>
 * where TOKEN is limone_obs.exporter.rum.page_token("/the/url/rule", app) (the server
 * accepts only tokens it signed, so a page label is never a URL the browser chose).
 *
 * Once the load event has ended and the first contentful paint is known (a small page
 * often paints only after its load event; at most FCP_WAIT_MS later, or when the page is
 * hidden first, it goes without fcp) it sends one beacon with the navigation phases, in
 * seconds since the navigation started: ttfb, fcp, dom_content_loaded, load. When the
 * page is first hidden it sends the largest contentful paint (lcp), which is final only
 * then. The app adds named marks: limoneObs.mark("ai_answer_shown") records seconds since
 * the navigation started, limoneObs.mark("ai_answer_shown", t0) seconds since t0 (a
 * performance.now() value taken when the user asked). The server accepts only the mark
 * names it was configured with (LIMONE_OBS_RUM_MARKS), which the Jinja tag lists in
 * data-marks: a mark not listed there is not sent, and the console says so once per name.
 * The script is deferred: call limoneObs.mark from DOMContentLoaded on, not from an inline
 * script that runs earlier.
 */
(function () {
  "use strict";
  var tag = document.currentScript;
  var perf = window.performance;
  var noop = { mark: function () {} };
  if (window.limoneObs && window.limoneObs.reporting) {
    // The tag is on the page twice (a template and one it extends both include it): one
    // copy reports, or the page view would be timed and counted twice.
    if (window.console && console.warn) {
      console.warn("limone-obs: the RUM script is on this page twice; only the first reports");
    }
    return;
  }
  if (!tag || !perf || !perf.now || !navigator.sendBeacon) {
    window.limoneObs = noop;
    return;
  }
  var beacon = tag.getAttribute("data-beacon");
  var page = tag.getAttribute("data-page");
  // The mark names the server keeps; null (a tag written by hand without it): any.
  var listed = tag.getAttribute("data-marks");
  var marks = listed === null ? null : listed ? listed.split(",") : [];
  // Names warned about; no prototype, so "constructor" or "toString" is a name like any.
  var warned = Object.create(null);
  if (!beacon || !page) {
    window.limoneObs = noop;
    return;
  }
  // A page that never paints content (blank) must still report its other phases.
  var FCP_WAIT_MS = 3000;
  var pending = {};
  var loadEnded = false;
  var sent = false;
  var waiting = null;
  var fcp = null;
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
    var paint = firstPaint();
    if (paint !== null) {
      v.fcp = seconds(paint);
    }
    return v;
  }

  function firstPaint() {
    if (fcp !== null) {
      return fcp;
    }
    var entry = perf.getEntriesByName ? perf.getEntriesByName("first-contentful-paint")[0] : null;
    return entry ? entry.startTime : null;
  }

  // The navigation beacon, once: merges the marks set before it.
  function sendNavigation() {
    if (sent) {
      return;
    }
    sent = true;
    if (waiting !== null) {
      clearTimeout(waiting);
    }
    var v = navigationPhases();
    for (var name in pending) {
      if (Object.prototype.hasOwnProperty.call(pending, name)) {
        v[name] = pending[name];
      }
    }
    pending = {};
    send(v);
  }

  function onLoad() {
    // loadEventEnd is set only once the load handlers have returned: wait one task.
    setTimeout(function () {
      loadEnded = true;
      if (firstPaint() !== null) {
        sendNavigation();
      } else {
        waiting = setTimeout(sendNavigation, FCP_WAIT_MS);
      }
    }, 0);
  }

  function onPaint(list) {
    var entries = list.getEntries();
    for (var i = 0; i < entries.length; i++) {
      if (entries[i].name === "first-contentful-paint") {
        fcp = entries[i].startTime;
        if (loadEnded) {
          sendNavigation();
        }
      }
    }
  }

  // Hidden or leaving: what is known goes now (no later chance), then the final LCP.
  function onLeave() {
    if (loadEnded) {
      sendNavigation();
    }
    if (!lcpSent && lcp !== null) {
      lcpSent = true;
      send({ lcp: seconds(lcp) });
    }
  }

  function onHidden() {
    if (document.visibilityState === "hidden") {
      onLeave();
    }
  }

  window.limoneObs = {
    // Read by a second copy of this script on the page (see the top).
    reporting: true,
    mark: function (name, since) {
      if (typeof name !== "string") {
        return;
      }
      if (marks !== null && marks.indexOf(name) < 0) {
        if (!warned[name] && window.console && console.warn) {
          warned[name] = true;
          console.warn(
            'limone-obs: mark "' + name + '" is not in LIMONE_OBS_RUM_MARKS (' + listed +
              "): not sent (the server would drop it); add it there to record it (lower-case " +
              "letters, digits and _)"
          );
        }
        return;
      }
      var value = seconds(perf.now() - (typeof since === "number" ? since : 0));
      if (sent) {
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
  try {
    new PerformanceObserver(onPaint).observe({ type: "paint", buffered: true });
  } catch (e) {
    /* no paint observer: firstPaint() reads the entry at load, if there is one */
  }
  document.addEventListener("visibilitychange", onHidden);
  // pagehide fires before visibilitychange in some browsers: report hidden either way.
  window.addEventListener("pagehide", onLeave);
  if (document.readyState === "complete") {
    onLoad();
  } else {
    window.addEventListener("load", onLoad);
  }
})();
