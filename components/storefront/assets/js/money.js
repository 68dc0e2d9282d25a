// Money is integer minor units of an ISO 4217 currency ({amount, currency}).
// Formatted with Intl.NumberFormat; the currency's own number of decimals
// (2 for EUR, 0 for JPY) says how many minor units make one major unit.

const formatters = new Map();
const LOCALE = "en-IE";

function formatter(currency) {
  let f = formatters.get(currency);
  if (!f) {
    try {
      f = new Intl.NumberFormat(LOCALE, { style: "currency", currency });
    } catch {
      f = null;
    }
    formatters.set(currency, f);
  }
  return f;
}

/** formatMoney({amount: 1290, currency: "EUR"}) → "€12.90"; also (amount, currency). */
export function formatMoney(money, currency) {
  const amount = typeof money === "object" && money ? money.amount : money;
  const code = typeof money === "object" && money ? money.currency : currency;
  const f = formatter(code);
  if (!f) return `${(amount / 100).toFixed(2)} ${code}`;
  const digits = f.resolvedOptions().maximumFractionDigits;
  return f.format(amount / 10 ** digits);
}
