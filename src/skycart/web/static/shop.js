// Improves the basket: its forms update it in place instead of reloading the page. Without this, they post as usual.
(function () {
  "use strict";
  var basket = document.getElementById("basket");
  var status = document.getElementById("shop-status");
  if (!basket || !window.fetch || !window.FormData) {
    return;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-basket")) {
      return;
    }
    event.preventDefault();
    var body = new FormData(form, event.submitter || undefined);
    fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("basket update refused");
        }
        return response.json();
      })
      .then(function (answer) {
        basket.innerHTML = answer.basket_html;
        document.querySelectorAll("[data-basket-count]").forEach(function (counter) {
          counter.textContent = String(answer.count);
        });
        if (status) {
          status.textContent = answer.message || "";
        }
      })
      .catch(function () {
        HTMLFormElement.prototype.submit.call(form);
      });
  });
})();
