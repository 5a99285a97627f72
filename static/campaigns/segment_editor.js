// The segment editor (templates/dashboard/campaigns/segment_form.html): rows of field, operator
// and value, and the live count. A moment after each change the rules go to the count endpoint
// (POST as JSON, the CSRF token in a header); its answer replaces the figures, or names the row
// at fault. Rows without a value yet are left out of the count until one is typed.
(function () {
  "use strict";
  const form = document.getElementById("segment-form");
  const spec = JSON.parse(document.getElementById("segment-fields").textContent);
  const body = form.querySelector("#rules tbody");
  const template = document.getElementById("rule-template");
  const panel = document.getElementById("live-count");
  const status = document.getElementById("count-state");
  const token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const hints = {
    money: "an amount, e.g. 100", integer: "a number, e.g. 3", date: "2026-01-31 or a number of days",
    choices: "e.g. shopify, woocommerce", countries: "e.g. US, CA", text: "text", boolean: "yes or no",
  };
  let timer = null;
  let asked = 0;

  function fillOps(row, keep) {
    const field = spec.fields[row.querySelector(".rule-field").value];
    const select = row.querySelector(".rule-op");
    const current = keep ? select.value : "";
    select.replaceChildren(...field.ops.map((op) => new Option(spec.ops[op], op, false, op === current)));
    row.querySelector(".rule-value").placeholder = hints[field.type] || "";
  }

  function showError(index, message) {
    body.querySelectorAll(".rule-row").forEach((row, i) => {
      const box = row.querySelector(".rule-error");
      box.textContent = i === index ? message : "";
      box.hidden = i !== index;
    });
  }

  async function count() {
    const mine = ++asked;
    const all = Array.from(body.querySelectorAll(".rule-row"));
    const sent = all.filter((row) => row.querySelector(".rule-value").value.trim() !== "");
    const rules = sent.map((row) => ({
      field: row.querySelector(".rule-field").value,
      op: row.querySelector(".rule-op").value,
      value: row.querySelector(".rule-value").value,
    }));
    panel.classList.add("stale");
    status.textContent = "counting…";
    let answer, figures;
    try {
      answer = await fetch(panel.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token },
        body: JSON.stringify({ match: form.elements.namedItem("match").value, rules: rules }),
      });
      figures = await answer.json();
    } catch (error) {
      if (mine === asked) status.textContent = "could not count just now";
      return;
    }
    if (mine !== asked) return; // a later change is being counted
    if (!answer.ok) {
      const row = figures.row === null || figures.row === undefined ? -1 : all.indexOf(sent[figures.row]);
      showError(row, figures.error);
      status.textContent = row < 0 ? figures.error : "fix the rule marked in red to count";
      return;
    }
    showError(-1, "");
    for (const key of ["customers", "email", "sms"]) {
      panel.querySelector(`[data-count="${key}"]`).textContent = figures[key].toLocaleString("en");
    }
    panel.classList.remove("stale");
    const waiting = all.length - sent.length;
    status.textContent = waiting ? `${waiting} rule${waiting > 1 ? "s" : ""} without a value not counted yet` : "updates as you edit";
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(count, 300);
  }

  body.addEventListener("change", (event) => {
    if (event.target.classList.contains("rule-field")) fillOps(event.target.closest(".rule-row"), false);
    later();
  });
  body.addEventListener("input", (event) => {
    if (event.target.classList.contains("rule-value")) later();
  });
  body.addEventListener("click", (event) => {
    if (!event.target.classList.contains("remove-rule")) return;
    event.target.closest(".rule-row").remove();
    later();
  });
  form.elements.namedItem("match").addEventListener("change", later);
  document.getElementById("add-rule").addEventListener("click", () => {
    const row = template.content.firstElementChild.cloneNode(true);
    body.append(row);
    fillOps(row, false);
    row.querySelector(".rule-field").focus();
  });
  body.querySelectorAll(".rule-row").forEach((row) => fillOps(row, true));
})();
