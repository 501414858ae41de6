// GOV.UK Frontend's components (service navigation toggle, error summary focus, ...).
import { initAll } from '/assets/govuk-frontend.min.js';

initAll();
