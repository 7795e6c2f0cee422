// commentmod moderation queue: keyboard shortcuts and in-place labelling.
// Without this script every button still works as a plain form post.
(function () {
  "use strict";
  var items = Array.prototype.slice.call(document.querySelectorAll("#queue .comment"));
  var current = -1;

  function focus(i) {
    if (!items.length) return;
    i = Math.max(0, Math.min(items.length - 1, i));
    if (current >= 0 && items[current]) items[current].classList.remove("current");
    current = i;
    items[i].classList.add("current");
    items[i].focus({ preventScroll: true });
    items[i].scrollIntoView({ block: "nearest" });
  }

  function nextPending(from) {
    for (var i = from + 1; i < items.length; i++) {
      if (!items[i].classList.contains("labelled")) return i;
    }
    return Math.min(from + 1, items.length - 1);
  }

  function showError(item, message) {
    var status = item.querySelector(".meta .status");
    if (status) status.textContent = "not saved: " + message;
    item.classList.add("failed");
  }

  function submitLabel(form, button) {
    var item = form.closest(".comment");
    var body = new FormData(form, button);
    fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", "Accept": "application/json" }
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
        return data;
      });
    }).then(function (data) {
      if (data.task === "spam") {
        item.classList.remove("labelled-spam", "labelled-ham", "failed");
        item.classList.add("labelled", "labelled-" + data.label);
        var status = item.querySelector(".meta .status");
        status.textContent = "labelled ";
        var b = document.createElement("b");
        b.textContent = data.label;
        status.appendChild(b);
        status.appendChild(document.createTextNode(" by " + data.actor +
          (data.copies ? " with its " + data.copies + " other copies" : "")));
        var idx = items.indexOf(item);
        if (idx === current) focus(nextPending(idx));
      } else {
        var tstatus = form.querySelector(".status") || form.appendChild(document.createElement("span"));
        tstatus.className = "status";
        tstatus.textContent = data.label;
      }
    }).catch(function (err) { showError(item, err.message); });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("label-form")) return;
    event.preventDefault();
    submitLabel(form, event.submitter);
  });

  var selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      items.forEach(function (item) {
        var box = item.querySelector("input[type=checkbox]");
        if (box) box.checked = selectAll.checked;
      });
    });
  }

  items.forEach(function (item, i) {
    item.addEventListener("click", function (event) {
      if (event.target.closest("button, input, a, select")) return;
      focus(i);
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = event.target.tagName;
    if (tag === "INPUT" && event.target.type !== "checkbox") return;
    if (tag === "TEXTAREA" || tag === "SELECT") return;
    var key = event.key;
    if (key === "j") { focus(current + 1); }
    else if (key === "k") { focus(current - 1); }
    else if ((key === "s" || key === "h") && current >= 0) {
      var button = items[current].querySelector(".label-form button[data-key=" + key + "]");
      if (button) button.form.requestSubmit(button);
    } else if (key === "x" && current >= 0) {
      var box = items[current].querySelector("input[type=checkbox]");
      if (box) box.checked = !box.checked;
    } else { return; }
    event.preventDefault();
  });

  if (items.length) focus(0);
})();
