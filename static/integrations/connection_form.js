// On the "add connection" page, choosing a platform reloads the form with that platform's
// credential fields (the form is built from the platform catalogue on the server).
document.addEventListener("DOMContentLoaded", function () {
  var select = document.getElementById("id_platform");
  if (!select || select.disabled || !/\/add\/$/.test(window.location.pathname)) return;
  select.addEventListener("change", function () {
    var params = new URLSearchParams(window.location.search);
    params.set("platform", select.value);
    var tenant = document.getElementById("id_tenant");
    if (tenant && tenant.value) params.set("tenant", tenant.value);
    var name = document.getElementById("id_name");
    if (name && name.value) params.set("name", name.value);
    window.location.search = params.toString();
  });
});
