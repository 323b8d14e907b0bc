/* Dabiao pages: the phone menu, confirmations on forms, and the dashboard's charts (Apache ECharts, served
   from /static). The charts are drawn from the JSON block the page embeds (#dashboard-data); every bar links
   to the firm list behind it. No inline script anywhere: the pages' CSP allows only this file and ECharts. */
(function () {
  "use strict";

  var FONT = '"Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif';
  var COLORS = ["#154a8a", "#d9822b", "#2a9d8f", "#c0392b", "#7b5ea7", "#6a994e", "#b8860b", "#4f6d7a"];

  function onReady(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function setupMenu() {
    var button = document.querySelector(".menu");
    var nav = document.getElementById("nav");
    if (!button || !nav) { return; }
    var narrow = window.matchMedia("(max-width: 720px)");
    function apply() {
      nav.classList.toggle("closed", narrow.matches && button.getAttribute("aria-expanded") !== "true");
    }
    button.addEventListener("click", function () {
      button.setAttribute("aria-expanded", button.getAttribute("aria-expanded") === "true" ? "false" : "true");
      apply();
    });
    narrow.addEventListener("change", apply);
    apply();
  }

  function setupConfirmations() {
    document.addEventListener("submit", function (event) {
      var button = event.submitter;
      var text = button && button.getAttribute("data-confirm");
      if (text && !window.confirm(text)) { event.preventDefault(); }
    });
  }

  function base() {
    return {
      color: COLORS,
      textStyle: { fontFamily: FONT },
      animationDuration: 300,
      tooltip: { renderMode: "richText", confine: true },
    };
  }

  function follow(chart) {
    chart.on("click", function (params) {
      var url = params.data && params.data.url;
      if (url && params.value) { window.location.href = url; }
    });
  }

  function narrow() { return window.innerWidth <= 720; }

  function funnelOption(data, view) {
    var states = data.states.map(function (s) { return s.label; });
    var series = data.funnel[view].map(function (s) {
      return { name: s.name, type: "bar", stack: "firms", data: s.data, emphasis: { focus: "series" }, barMaxWidth: 28 };
    });
    return Object.assign(base(), {
      tooltip: { renderMode: "richText", confine: true, trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { type: "scroll", top: 0 },
      grid: { left: 8, right: 16, top: 34, bottom: 8, containLabel: true },
      xAxis: { type: "value" },
      yAxis: { type: "category", data: states, inverse: true },
      series: series,
    });
  }

  function burndownOption(data, item) {
    var series = [];
    item.series.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length];
      series.push({ name: s.name, type: "line", data: s.points, showSymbol: false, lineStyle: { width: 2, color: color },
        itemStyle: { color: color } });
      if (s.projection.length) {
        series.push({ name: s.name, type: "line", data: s.projection, symbol: "circle", symbolSize: 5,
          lineStyle: { type: "dashed", width: 1.5, color: color }, itemStyle: { color: color }, tooltip: { show: true } });
      }
    });
    if (series.length) {
      series[0].markLine = { symbol: "none", silent: true, label: { formatter: data.labels.milestone, fontFamily: FONT },
        lineStyle: { color: "#c0392b", type: "solid" }, data: [{ xAxis: item.milestone }] };
    }
    return Object.assign(base(), {
      tooltip: { renderMode: "richText", confine: true, trigger: "axis" },
      legend: { type: "scroll", bottom: 0, data: item.series.map(function (s) { return s.name; }) },
      grid: { left: 8, right: 24, top: 24, bottom: 36, containLabel: true },
      xAxis: { type: "time", max: item.milestone > data.today ? item.milestone : data.today },
      yAxis: { type: "value", minInterval: 1 },
      series: series,
    });
  }

  function targetsOption(data) {
    var t = data.targets;
    function share(part) {
      return t[part].started.map(function (c, i) {
        var target = t[part].target[i];  // null: no target entered (目标未录入), no bar
        var value = target === null ? null : (target ? Math.round(1000 * c.value / target) / 10 : 100);
        return { value: value, url: c.url, started: c.value, target: target };
      });
    }
    return Object.assign(base(), {
      tooltip: { renderMode: "richText", confine: true, trigger: "axis", axisPointer: { type: "shadow" },
        valueFormatter: function (v) { return v + "%"; } },
      legend: { top: 0 },
      grid: { left: 8, right: 24, top: 34, bottom: 8, containLabel: true },
      xAxis: { type: "value", axisLabel: { formatter: "{value}%" } },
      yAxis: { type: "category", data: t.districts, inverse: true },
      series: [
        { name: data.labels.key, type: "bar", data: share("key"), barMaxWidth: 16,
          markLine: { symbol: "none", silent: true, data: [{ xAxis: 100 }], lineStyle: { color: "#1e7b45" },
            label: { formatter: data.labels.target, fontFamily: FONT } } },
        { name: data.labels.other, type: "bar", data: share("other"), barMaxWidth: 16 },
      ],
    });
  }

  function draw(el, option) {
    var chart = window.echarts.getInstanceByDom(el) || window.echarts.init(el, null, { renderer: "canvas" });
    chart.setOption(option, true);
    el.setAttribute("data-ready", "1");
    return chart;
  }

  function setupCharts() {
    var block = document.getElementById("dashboard-data");
    if (!block || !window.echarts) { return; }
    var data = JSON.parse(block.textContent);
    var charts = [];
    var funnel = document.getElementById("funnel-chart");
    if (funnel) {
      var chart = draw(funnel, funnelOption(data, "all"));
      follow(chart);
      charts.push(chart);
      document.querySelectorAll(".views button[data-view]").forEach(function (button) {
        button.addEventListener("click", function () {
          document.querySelectorAll(".views button").forEach(function (b) { b.classList.toggle("on", b === button); });
          draw(funnel, funnelOption(data, button.getAttribute("data-view")));
        });
      });
    }
    data.burndown.forEach(function (item) {
      var el = document.querySelector('[data-chart="burndown"][data-milestone="' + item.id + '"]');
      if (el) { charts.push(draw(el, burndownOption(data, item))); }
    });
    var targets = document.getElementById("targets-chart");
    if (targets) {
      targets.style.height = (90 + 48 * data.targets.districts.length) + "px";
      var t = draw(targets, targetsOption(data));
      follow(t);
      charts.push(t);
    }
    var pending = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(function () { charts.forEach(function (c) { c.resize(); }); }, 120);
    });
  }

  function setupPrint() {
    document.querySelectorAll("button.print-page").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  }

  onReady(function () {
    setupPrint();
    setupMenu();
    setupConfirmations();
    setupCharts();
  });
})();
