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
   those decorations are hidden from assistive technology, the label stays. */
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
  function hideDecorations() {
    document.querySelectorAll(".theme-switch-button .theme-switch, " +
                              ".search-button__kbd-shortcut").forEach(function (e) {
      e.setAttribute("aria-hidden", "true");
    });
  }
  function setup() {
    forward(".primary-toggle");
    forward(".secondary-toggle");
    nameTheChevrons();
    hideDecorations();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
