// Share: the device's share sheet where there is one, else copy the link and
// say so. The server renders the links (share code + channel).
const b = document.querySelector("[data-share-button]");
const out = document.querySelector("[data-share-status]");
if (b && out) {
  const d = b.dataset;
  b.hidden = false;
  b.onclick = async () => {
    if (navigator.share) {
      try {
        return await navigator.share({ title: d.title, url: d.urlApp });
      } catch (e) {
        if (e.name === "AbortError") return;
      }
    }
    try {
      await navigator.clipboard.writeText(d.urlCopy);
      out.textContent = d.copied;
    } catch {
      out.textContent = `${d.copyFailed} ${d.urlCopy}`;
    }
  };
}
