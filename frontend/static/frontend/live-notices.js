// A followed brand's go-live loads its notice (docs/audience.md).
const data = JSON.parse(document.getElementById("live-notices").textContent);
document.addEventListener("showfloor:event", ({ detail: e }) => {
  if (e?.type === "brand.live" && data.brands.includes(e.brand_id)) import(data.module).then((m) => m.show(data, e));
});
