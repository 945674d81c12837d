// Draws each console chart with Plotly from the JSON the page carries; the page's tables hold the same data.
(function () {
  "use strict";
  var palette = ["#1f3a5f", "#b3541e", "#1e6b34", "#7a2e8f", "#a4161a", "#0f6e7a", "#6b5a00", "#3d4fa8", "#8a3b12", "#2f6b4f"];

  function draw(element) {
    var source = document.getElementById(element.getAttribute("data-chart"));
    if (!source || typeof Plotly === "undefined") {
      return;
    }
    var spec = JSON.parse(source.textContent);
    var traces = Object.keys(spec.series).map(function (name, index) {
      return {
        type: "scatter",
        mode: "lines+markers",
        name: name,
        x: spec.x,
        y: spec.series[name],
        connectgaps: false,
        line: { color: palette[index % palette.length], width: 2 },
        marker: { size: 4 }
      };
    });
    var layout = {
      title: { text: spec.title, font: { size: 15 } },
      margin: { l: 56, r: 16, t: 48, b: 48 },
      xaxis: { type: "date", title: { text: "UTC" } },
      yaxis: { title: { text: spec.y_title }, rangemode: "tozero" },
      legend: { orientation: "h", y: -0.25 },
      showlegend: true,
      font: { family: "system-ui, sans-serif", color: "#1a1a1a" }
    };
    Plotly.newPlot(element, traces, layout, { displaylogo: false, displayModeBar: false, responsive: true });
  }

  document.querySelectorAll("[data-chart]").forEach(draw);
})();
