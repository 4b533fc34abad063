// Pipeline board: drag a card onto another column to move the deal. A drop posts the card's own
// move form (its CSRF token included) with the target stage through htmx, which swaps the
// board; moving to a lost stage (a drop, or a card's "lost…" button) first asks for the reason.
// Without this file the cards' buttons post the same form and "lost…" opens a page that asks.
"use strict";

(function () {
  let dragged = null;

  function columnOf(target) {
    return target instanceof Element ? target.closest(".column[data-stage]") : null;
  }

  function unmark() {
    document.querySelectorAll(".column.drop").forEach((column) => column.classList.remove("drop"));
  }

  function move(card, stage, reason) {
    const form = card.querySelector("form.move-form");
    if (!form || !window.htmx) return;
    const values = { stage: stage };
    if (reason) values.lost_reason = reason;
    card.classList.add("moving");
    window.htmx.ajax("POST", form.getAttribute("action"), {
      source: form,
      target: "#board",
      swap: "outerHTML",
      values: values,
    });
  }

  function askReason(card, stage) {
    const dialog = document.getElementById("lost-dialog");
    if (!dialog) return;
    const select = dialog.querySelector("select[name='lost_reason']");
    select.value = "";
    dialog.querySelector(".lost-dialog-title").textContent = card.dataset.title || "";
    dialog.returnValue = "";
    dialog.addEventListener(
      "close",
      () => {
        if (dialog.returnValue === "confirm" && select.value) move(card, stage, select.value);
      },
      { once: true }
    );
    dialog.showModal();
    select.focus();
  }

  document.addEventListener("click", (event) => {
    const lose = event.target instanceof Element ? event.target.closest(".card a.lose") : null;
    if (!lose || !document.getElementById("lost-dialog")) return;
    event.preventDefault();
    askReason(lose.closest(".card"), lose.dataset.stage);
  });

  document.addEventListener("dragstart", (event) => {
    const card =
      event.target instanceof Element ? event.target.closest(".card[draggable='true']") : null;
    if (!card) return;
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.id);
    card.classList.add("dragging");
  });

  document.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    unmark();
  });

  document.addEventListener("dragover", (event) => {
    const column = columnOf(event.target);
    if (!dragged || !column) return;
    event.preventDefault(); // allow the drop
    event.dataTransfer.dropEffect = "move";
    if (!column.classList.contains("drop")) {
      unmark();
      column.classList.add("drop");
    }
  });

  document.addEventListener("drop", (event) => {
    const column = columnOf(event.target);
    if (!dragged || !column) return;
    event.preventDefault();
    const card = dragged;
    unmark();
    const stage = column.dataset.stage;
    if (stage === card.dataset.stage) return;
    if (column.dataset.outcome === "lost") askReason(card, stage);
    else move(card, stage);
  });

  // The board is swapped on success and on a refusal; a failed request leaves it: unfade.
  document.addEventListener("htmx:afterRequest", () => {
    document.querySelectorAll(".card.moving").forEach((card) => card.classList.remove("moving"));
  });

  // A refused move answers 422 with the board and its error message: show it.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const detail = event.detail;
    if (detail.xhr.status === 422 && detail.target && detail.target.id === "board") {
      detail.shouldSwap = true;
      detail.isError = false;
    }
  });
})();
