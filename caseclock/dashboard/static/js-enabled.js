// Marks the page as having JavaScript, as GOV.UK Frontend's template does inline (the
// dashboard's Content-Security-Policy allows no inline script, so it lives here).
document.body.className +=
  ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '');
