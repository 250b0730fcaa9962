// outbox dashboard: refreshes [data-live] regions by polling their URL,
// and submits [data-async] forms without leaving the page. Everything works
// without it, only less live.
(function () {
  "use strict";
  var period = parseInt(document.body.getAttribute("data-refresh"), 10) || 2000;

  function refresh(el) {
    var f = document.activeElement;
    if (f && el.contains(f) && /^(INPUT|SELECT|TEXTAREA)$/.test(f.tagName)) {
      return Promise.resolve(); // do not replace a field while someone types in it
    }
    return fetch(el.getAttribute("data-live"), {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && html !== el.getAttribute("data-last")) {
          el.setAttribute("data-last", html);
          el.innerHTML = html;
        }
      })
      .catch(function () {});
  }

  function refreshAll() {
    if (document.hidden) { return; }
    document.querySelectorAll("[data-live]").forEach(refresh);
  }

  // Forms are submitted by fetch, then the live regions refresh at once.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.hasAttribute("data-async")) { return; }
    ev.preventDefault();
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { return; }
    var out = form.parentNode.querySelector(".result");
    fetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin", headers: {"X-Outbox-Fetch": "1"}})
      .then(function (r) { return r.text(); })
      .then(function (text) {
        refreshAll();
        var res = document.querySelector("[data-live] .result");
        if (res) { res.textContent = text; } else if (out) { out.textContent = text; }
      })
      .catch(function () { if (out) { out.textContent = "The request failed."; } });
  });

  setInterval(refreshAll, period);
})();
