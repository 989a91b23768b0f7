// Starts ReDoc on the OpenAPI document named by the page's
// data-openapi-url attribute (no inline script, see the page's CSP).
window.addEventListener("load", function () {
  var root = document.getElementById("redoc");
  Redoc.init(root.getAttribute("data-openapi-url"), { hideDownloadButton: false }, root);
});
