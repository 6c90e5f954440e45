// The console's JavaScript: GOV.UK Frontend's components, enhanced where
// the page has them. Pages work without it.
import { initAll } from '/assets/govuk-frontend.min.js';

document.body.classList.add('js-enabled', 'govuk-frontend-supported');
initAll();

// The access report's print button: shown only where it can work.
const print = document.getElementById('print-report');
if (print) {
  print.hidden = false;
  print.addEventListener('click', () => window.print());
}
