/*
 * Starts the rasa-webchat widget on MOD Dermatology's chat page.
 *
 * window.MOD_CHAT comes from /config.js, written by bot/web_page.py: the Rasa
 * server's socket URL. No clinic facts live here: every answer comes from the
 * bot's reviewed knowledge base.
 */
"use strict";

(function () {
  var config = window.MOD_CHAT;
  var SAFE_PROTOCOLS = ["http:", "https:", "mailto:", "tel:"];

  /*
   * rasa-webchat renders bot and patient messages as Markdown. Raw HTML is
   * shown as text (react-markdown's escapeHtml), but link URLs are not checked
   * (the widget sets transformLinkUri to null), so "[x](javascript:...)" would
   * keep its URL. The page's Content-Security-Policy already stops javascript:
   * URLs from running; this also takes the address off any link that is not
   * web, e-mail or phone, wherever the widget adds one.
   */
  function disarmLinks(root) {
    if (!root.querySelectorAll) {
      return;
    }
    var links = root.querySelectorAll("a[href]");
    for (var i = 0; i < links.length; i += 1) {
      if (SAFE_PROTOCOLS.indexOf(links[i].protocol) === -1) {
        links[i].removeAttribute("href");
      }
    }
  }

  new MutationObserver(function () {
    disarmLinks(document.body);
  }).observe(document.body, {
    childList: true,
    subtree: true,
    attributes: true,
    attributeFilter: ["href"]
  });

  if (!config || !config.socketUrl || !window.WebChat) {
    var notice = document.createElement("p");
    notice.className = "notice";
    notice.textContent = "The chat could not start. Please try again later.";
    document.querySelector("main").appendChild(notice);
    return;
  }

  window.WebChat.default(
    {
      socketUrl: config.socketUrl,
      socketPath: "/socket.io/",
      customData: { language: "en" },
      // Opens each new conversation: the bot says what it is.
      initPayload: "/greet",
      title: "MOD Dermatology",
      subtitle: "Isotretinoin questions",
      inputTextFieldHint: "Type your question",
      mainColor: "#2f5d7c", // the page's colour (page.css --accent)
      userBackgroundColor: "#2f5d7c",
      // The conversation lives in this tab only (sessionStorage), not after it.
      params: { storage: "session" }
    },
    null
  );
})();
