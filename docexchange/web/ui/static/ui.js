// docexchange pages: small progressive enhancements only; every page works without JavaScript.
(function () {
  "use strict";

  // Drop a file on a drop zone: put it into the zone's file input.
  function setupDropzones() {
    document.querySelectorAll("[data-dropzone]").forEach(function (zone) {
      var input = zone.querySelector("input[type=file]");
      var label = zone.querySelector("[data-filename]");
      if (!input) { return; }
      function show() {
        if (label) { label.textContent = input.files && input.files.length ? input.files[0].name : ""; }
      }
      ["dragenter", "dragover"].forEach(function (ev) {
        zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.add("over"); });
      });
      ["dragleave", "drop"].forEach(function (ev) {
        zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.remove("over"); });
      });
      zone.addEventListener("drop", function (e) {
        if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; show(); }
      });
      input.addEventListener("change", show);
    });
  }

  // Ask before an action that cannot be undone (buttons with data-confirm).
  function setupConfirm() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); }
      });
    });
  }

  // Compose: show only the fields of the chosen way of composing; suggest the notation of the chosen type.
  function setupCompose() {
    var form = document.querySelector("form[data-compose]");
    if (!form) { return; }
    function sync() {
      var chosen = form.querySelector("input[name=source]:checked");
      var value = chosen ? chosen.value : "letter";
      form.querySelectorAll("[data-source]").forEach(function (el) {
        el.hidden = el.getAttribute("data-source") !== value;
      });
    }
    form.querySelectorAll("input[name=source]").forEach(function (r) { r.addEventListener("change", sync); });
    sync();
    var type = form.querySelector("select[name=type_name]");
    var notation = form.querySelector("input[name=code_notation]");
    if (type && notation) {
      type.addEventListener("change", function () {
        var opt = type.options[type.selectedIndex];
        var suggested = opt && opt.getAttribute("data-notation");
        if (suggested && (notation.value === "" || notation.getAttribute("data-auto") === "1")) {
          notation.value = suggested; notation.setAttribute("data-auto", "1");
        }
      });
      notation.addEventListener("input", function () { notation.setAttribute("data-auto", "0"); });
    }
  }

  // Double submits of signing/sending forms: disable the button once the form goes.
  function setupOnce() {
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      form.addEventListener("submit", function () {
        var b = form.querySelector("button[type=submit]");
        if (b) { setTimeout(function () { b.disabled = true; b.setAttribute("aria-busy", "true"); }, 0); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupDropzones(); setupConfirm(); setupCompose(); setupOnce();
  });
})();
