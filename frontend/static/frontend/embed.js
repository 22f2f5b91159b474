// Showfloor's embed loader (docs/embed.md), served at /embed.js for brands'
// own pages:
//   <script src="https://<showfloor>/embed.js" data-show="<show-slug>"></script>
// Each such tag gets an iframe of /embed/<slug>/ just after it. Messages from
// a frame are taken only from that frame's window and our origin, and are
// dispatched on the iframe as `showfloor:<type>` DOM events (they bubble);
// commands go only to our origin. `window.Showfloor.embeds` lists the frames
// with `play()` and `mute(muted = true)`.
(function () {
  "use strict";
  var scripts = document.querySelectorAll("script[data-show]");
  var registry = (window.Showfloor = window.Showfloor || { embeds: [] });
  var EVENTS = ["ready", "live", "ended", "product.pinned", "bag.added", "purchased", "muted"];

  function frameFor(script) {
    var src;
    try {
      src = new URL(script.src, document.baseURI);
    } catch (e) {
      return;
    }
    if (!/\/embed\.js$/.test(src.pathname) || script.dataset.showfloorEmbedded) return;
    var slug = script.dataset.show || "";
    if (!/^[-\w]+$/.test(slug)) return;
    script.dataset.showfloorEmbedded = "1";
    var origin = src.origin;
    var frame = document.createElement("iframe");
    frame.src = origin + "/embed/" + encodeURIComponent(slug) + "/?host=" + encodeURIComponent(location.origin);
    frame.title = script.dataset.title || "Live show";
    frame.allow = "autoplay; fullscreen; payment";
    frame.setAttribute("allowfullscreen", "");
    frame.className = "showfloor-embed";
    // Responsive: the width of its container, a phone-like height.
    frame.style.width = "100%";
    frame.style.maxWidth = script.dataset.maxWidth || "960px";
    frame.style.height = script.dataset.height || "min(90vh, 760px)";
    frame.style.border = "0";
    frame.style.display = "block";
    script.parentNode.insertBefore(frame, script.nextSibling);

    function command(type, extra) {
      var message = { source: "showfloor-host", type: type };
      for (var key in extra || {}) message[key] = extra[key];
      if (frame.contentWindow) frame.contentWindow.postMessage(message, origin);
    }
    var handle = {
      show: slug,
      element: frame,
      play: function () {
        command("play");
      },
      mute: function (muted) {
        command("mute", { muted: muted !== false });
      },
    };
    registry.embeds.push(handle);

    window.addEventListener("message", function (event) {
      // Strict both ways: our origin, and this very frame's window.
      if (event.origin !== origin || event.source !== frame.contentWindow) return;
      var data = event.data;
      if (!data || data.source !== "showfloor" || EVENTS.indexOf(data.type) < 0) return;
      frame.dispatchEvent(new CustomEvent("showfloor:" + data.type, { bubbles: true, detail: data }));
    });
  }

  for (var i = 0; i < scripts.length; i += 1) frameFor(scripts[i]);
})();
