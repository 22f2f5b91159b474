// The share button: the device's share sheet (Web Share API) where there is
// one, else the link copied with a visible "Link copied". The server renders
// the links (with the viewer's share code and the channel); this only hands
// them over.
const button = document.querySelector("[data-share-button]");
const status = document.querySelector("[data-share-status]");
if (button && status) {
  const { urlApp, urlCopy, title, copied, copyFailed } = button.dataset;
  button.hidden = false;
  button.addEventListener("click", async () => {
    if (navigator.share) {
      try {
        await navigator.share({ title, url: urlApp });
        return;
      } catch (error) {
        if (error.name === "AbortError") return;
      }
    }
    try {
      await navigator.clipboard.writeText(urlCopy);
      status.textContent = copied;
    } catch {
      status.textContent = `${copyFailed} ${urlCopy}`;
    }
  });
}
