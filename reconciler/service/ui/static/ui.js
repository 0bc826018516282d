// Live progress of the jobs on a page (rows or a panel marked data-job-id, data-active="true"):
// polls /ui/jobs/progress.json every second, updates the [data-field] parts and the progress bar,
// and reloads the page once one of them finishes (so the final state and actions are exact).
// Not needed: without JavaScript the page refreshes itself (<noscript> meta refresh).
(function () {
  "use strict";
  var watched = Array.prototype.slice.call(document.querySelectorAll("[data-job-id][data-active='true']"));
  if (!watched.length) { return; }
  var query = watched.map(function (el) { return "id=" + encodeURIComponent(el.getAttribute("data-job-id")); });
  var url = "/ui/jobs/progress.json?" + query.join("&");

  function show(el, job) {
    el.querySelectorAll("[data-field]").forEach(function (part) {
      var value = job[part.getAttribute("data-field")];
      if (value !== undefined && value !== null) { part.textContent = String(value); }
    });
    var bar = el.querySelector("progress");
    if (bar) { bar.value = job.percentage; }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { window.setTimeout(poll, 5000); return; }
        var finished = false;
        watched.forEach(function (el) {
          var job = data[el.getAttribute("data-job-id")];
          if (!job) { return; }
          show(el, job);
          if (!job.active) { finished = true; }
        });
        if (finished) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
