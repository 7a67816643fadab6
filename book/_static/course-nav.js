/* Fixes of the theme's markup, loaded on every page by book/_config.yml (each would be a small
   change upstream; remove it when the installed theme has it).

   1. Sidebar toggles that work at every width.

   pydata-sphinx-theme 0.17 renders a toggle of its own in the top bar, and sphinx-book-theme 1.3
   another in the article header; both themes attach their click handlers to the FIRST element
   with the class `primary-toggle` (or `secondary-toggle`) only, so the button a reader sees and
   taps gets none: on phones the menu never opens, and on desktop the sidebar does not collapse
   (pydata-sphinx-theme#2451, sphinx-book-theme#988). Until upstream fixes it, every other
   toggle forwards its click to the first one, whose handlers open the drawer (narrow screens)
   or collapse the sidebar (wide screens).
   2. Accessible names (axe-core's rules, run by tests/test_browser_book.py): the chevrons that
   open a section of the table of contents are <summary> elements with only an icon, so a
   screen reader announces nothing ("summary-name"): each gets "Pages of <section>". The
   colour-mode button's icons carry titles ("Light", "Dark") and the search button shows its
   keyboard shortcut, text that its aria-label does not contain ("label-content-name-mismatch"):
   the icons' titles go (the button's label "Color mode" stays), and the search button's label
   becomes the text it shows. */
(function () {
  "use strict";
  function forward(selector) {
    var toggles = document.querySelectorAll(selector);
    for (var i = 1; i < toggles.length; i++) {
      toggles[i].addEventListener("click", function (event) {
        event.preventDefault();
        event.stopImmediatePropagation();
        this.blur();
        var tip = window.bootstrap && window.bootstrap.Tooltip &&
          window.bootstrap.Tooltip.getInstance(this);
        if (tip) { tip.hide(); }            // no tooltip left over the opened drawer
        toggles[0].click();
      }, true);
    }
  }
  function nameTheChevrons() {
    document.querySelectorAll("li.has-children > details > summary").forEach(function (s) {
      if (s.getAttribute("aria-label")) { return; }
      var link = s.parentElement.parentElement.querySelector(":scope > a");
      var section = link ? link.textContent.trim() : "this section";
      s.setAttribute("aria-label", "Pages of " + section);
    });
  }
  function relabelButtons() {
    // the search button shows "Search Ctrl+K": its label says the same
    document.querySelectorAll(".search-button__button").forEach(function (b) {
      var text = (b.innerText || "").replace(/\s+/g, " ").trim();
      if (text && b.getAttribute("aria-label") !== text) { b.setAttribute("aria-label", text); }
    });
    // the colour-mode icons: Font Awesome turns each <i title> into an <svg> with a <title>
    document.querySelectorAll(".theme-switch-button svg").forEach(function (svg) {
      svg.querySelectorAll("title").forEach(function (t) { t.remove(); });
      svg.removeAttribute("aria-labelledby");
      svg.setAttribute("aria-hidden", "true");
    });
    document.querySelectorAll(".theme-switch-button i.theme-switch").forEach(function (i) {
      i.removeAttribute("title");
      i.setAttribute("aria-hidden", "true");
    });
  }
  function watchButtons() {
    relabelButtons();
    var pending = false;
    new MutationObserver(function () {      // Font Awesome swaps icons in after load
      if (pending) { return; }
      pending = true;
      window.requestAnimationFrame(function () { pending = false; relabelButtons(); });
    }).observe(document.body, {childList: true, subtree: true});
  }
  function setup() {
    forward(".primary-toggle");
    forward(".secondary-toggle");
    nameTheChevrons();
    watchButtons();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
