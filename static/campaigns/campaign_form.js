// The campaign form (templates/dashboard/campaigns/form.html): offer only the connections of the
// channel chosen, and the email fields for email only (the server clears them for an SMS).
(function () {
  "use strict";
  const form = document.getElementById("campaign-form");
  const channel = form.elements.namedItem("channel");
  const connection = form.elements.namedItem("connection");
  const email = form.querySelector("fieldset.email-only");

  function update() {
    const chosen = channel.value;
    email.hidden = chosen === "sms";
    for (const option of connection.options) {
      const fits = !option.value || !chosen || !option.dataset.channel || option.dataset.channel === chosen;
      option.hidden = !fits;
      option.disabled = !fits;
    }
    const selected = connection.selectedOptions[0];
    if (selected && selected.disabled) {
      const first = Array.from(connection.options).find((option) => option.value && !option.disabled);
      connection.value = first ? first.value : "";
    }
  }

  channel.addEventListener("change", update);
  update();
})();
