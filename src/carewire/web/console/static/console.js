// Carewire console: the inactivity sign-out.
// The server ends a session idle longer than the timeout (the policy: 20 minutes);
// this timer takes an idle page to the sign-out page just after that, so an
// unattended screen does not keep showing the console.
(function () {
  "use strict";
  var seconds = Number(document.body.getAttribute("data-session-timeout"));
  if (!seconds || seconds <= 0) {
    return;
  }
  window.setTimeout(function () {
    window.location.assign("/signout?reason=inactivity");
  }, (seconds + 1) * 1000);
})();

// Directory pages: small enhancements over pages that work without script.
// - [data-typeahead]: Invite Organization lists matching organisations as one types
//   (the Search button does the same without script).
// - [data-live-filter]: the Invitations filters apply as one types (server-side
//   filtering; the Filter button does the same without script).
// - [data-select-all]: a header checkbox selecting every row's checkbox.
(function () {
  "use strict";
  function debounce(fn, ms) {
    var timer = null;
    return function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(fn, ms);
    };
  }

  var search = document.querySelector("input[data-typeahead]");
  if (search) {
    var box = document.getElementById(search.getAttribute("aria-controls"));
    var typeahead = debounce(function () {
      var q = search.value.trim();
      if (!q) {
        return;
      }
      var url = search.getAttribute("data-typeahead") + "?q=" + encodeURIComponent(q);
      window.fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { organizations: [] }; })
        .then(function (data) {
          var legend = box.querySelector("legend");
          box.textContent = "";
          if (legend) {
            box.appendChild(legend);
          }
          if (!data.organizations.length) {
            var none = document.createElement("p");
            none.className = "hint";
            none.textContent = "No organization matches \u201c" + q + "\u201d.";
            box.appendChild(none);
          }
          data.organizations.forEach(function (o, i) {
            var row = document.createElement("div");
            row.className = "cw-check";
            var input = document.createElement("input");
            input.type = "radio";
            input.name = "invitee";
            input.value = String(o.id);
            input.id = "m-" + o.id;
            input.checked = data.organizations.length === 1 && i === 0;
            var label = document.createElement("label");
            label.htmlFor = input.id;
            label.textContent = o.name + " (" + o.kind + ")";
            row.appendChild(input);
            row.appendChild(label);
            box.appendChild(row);
          });
        })
        .catch(function () { /* the Search button still works */ });
    }, 250);
    search.addEventListener("input", typeahead);
  }

  var filter = document.querySelector("form[data-live-filter]");
  if (filter) {
    var target = filter.getAttribute("data-live-filter");
    var apply = debounce(function () {
      var params = new URLSearchParams(new FormData(filter));
      var url = filter.getAttribute("action") + "?" + params.toString();
      window.fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById(target);
          var current = document.getElementById(target);
          if (fresh && current) {
            current.replaceWith(fresh);
            window.history.replaceState(null, "", url);
            bindSelectAll();
          }
        })
        .catch(function () { /* the Filter button still works */ });
    }, 250);
    filter.addEventListener("input", apply);
    filter.addEventListener("change", apply);
  }

  function bindSelectAll() {
    document.querySelectorAll("input[data-select-all]").forEach(function (all) {
      var name = all.getAttribute("data-select-all");
      all.addEventListener("change", function () {
        all.form.querySelectorAll("input[type=checkbox][name='" + name + "']").forEach(function (c) {
          c.checked = all.checked;
        });
      });
    });
  }
  bindSelectAll();
})();

// [data-refresh]: a section that replaces itself every data-refresh-seconds with the same
// section fetched from data-refresh (the Integrations page's status). The fetch does not
// keep the session alive (the server does not count it as activity), and a failed one
// leaves the section as it was.
(function () {
  "use strict";
  var section = document.querySelector("[data-refresh]");
  if (!section || !section.id) {
    return;
  }
  var id = section.id;
  var url = section.getAttribute("data-refresh");
  var seconds = Number(section.getAttribute("data-refresh-seconds")) || 10;
  window.setInterval(function () {
    if (document.hidden) {
      return;
    }
    window.fetch(url, { credentials: "same-origin", redirect: "manual" })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        if (!html) {
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(id);
        var current = document.getElementById(id);
        if (fresh && current) {
          current.replaceWith(fresh);
        }
      })
      .catch(function () { /* reloading the page still shows the status */ });
  }, Math.max(1, seconds) * 1000);
})();

// Times in the viewer's time zone: each <time data-local-time datetime="ISO UTC"> is shown with
// Intl.DateTimeFormat in the browser's locale and zone (named once, in [data-local-zone]); the server wrote a readable UTC time
// as the fallback (and the title keeps it). [data-local-zone] names the zone used.
(function () {
  "use strict";
  if (typeof Intl === "undefined" || !Intl.DateTimeFormat) {
    return;
  }
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
  document.querySelectorAll("time[data-local-time]").forEach(function (el) {
    var at = new Date(el.getAttribute("datetime"));
    if (!isNaN(at.getTime())) {
      el.textContent = format.format(at);
    }
  });
  var zone = format.resolvedOptions().timeZone;
  document.querySelectorAll("[data-local-zone]").forEach(function (el) {
    el.textContent = zone;
  });
})();
