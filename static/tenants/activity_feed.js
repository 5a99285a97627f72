// The activity stream's live panels (client overview, admin Activity list): every 10 seconds,
// ask the feed for entries newer than the newest one shown and put them on top. Entries are
// built with textContent only, so a message can never inject markup. Polling pauses while the
// page is hidden.
(function () {
  "use strict";

  var PERIOD_MS = 10000;
  var LEVEL_BADGES = { warning: "low", error: "failing" };

  function entry(item, withTenant) {
    var li = document.createElement("li");
    li.className = "activity-entry " + item.level;
    li.dataset.id = item.id;
    var time = document.createElement("time");
    time.dateTime = item.created_at;
    time.className = "muted small";
    time.textContent = item.when;
    var badge = document.createElement("span");
    badge.className = "badge " + (LEVEL_BADGES[item.level] || "");
    badge.textContent = item.kind_label;
    var text = document.createElement("span");
    text.className = "activity-message";
    text.textContent = (withTenant && item.tenant ? item.tenant.name + ": " : "") + item.message;
    li.append(time, " ", badge, " ", text);
    return li;
  }

  function start(list) {
    var keep = Number(list.dataset.keep || 10);
    var withTenant = list.dataset.withTenant === "1";
    var after = list.dataset.after === undefined ? null : Number(list.dataset.after);
    var empty = document.getElementById(list.dataset.emptyId || "");
    var busy = false;

    function poll() {
      if (busy || document.hidden) return;
      busy = true;
      var url = new URL(list.dataset.activityFeed, window.location.href);
      if (after !== null) url.searchParams.set("after", String(after));
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) {
          if (!body) return;
          // Newest first in the answer: insert the oldest first, so the newest ends on top.
          body.items.slice().reverse().forEach(function (item) {
            if (!list.querySelector('[data-id="' + item.id + '"]')) list.prepend(entry(item, withTenant));
          });
          while (list.children.length > keep) list.lastElementChild.remove();
          if (empty) empty.hidden = list.children.length > 0;
          after = Math.max(after || 0, body.last_id || 0);
        })
        .catch(function () { /* offline for a moment: the next poll tries again */ })
        .finally(function () { busy = false; });
    }

    if (after === null) poll();
    window.setInterval(poll, PERIOD_MS);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });
  }

  document.querySelectorAll("[data-activity-feed]").forEach(start);
})();
