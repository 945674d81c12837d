"""The storefront's own words in the passenger's language, and prices and language names as CLDR writes them."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency

FALLBACK = "en"

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "skip": "Skip to content",
        "shop": "Onboard shop",
        "flight": "Flight {number}: {origin} to {destination}",
        "language": "Language",
        "currency": "Currency",
        "apply": "Apply",
        "categories": "Categories",
        "all": "All",
        "add": "Add to basket",
        "quantity": "Quantity",
        "left": "{count} left",
        "sold_out": "Sold out",
        "age_limit": "{age}+ only",
        "basket": "Basket",
        "basket_empty": "Your basket is empty.",
        "remove": "Remove",
        "update": "Update",
        "total": "Total",
        "checkout": "Checkout",
        "seat": "Seat number",
        "seat_hint": "Row and letter, for example 12C",
        "age_confirm": "I confirm that I am at least {age} years old.",
        "payment": "Payment",
        "pay": "Pay {total}",
        "sandbox": "Sandbox: no real payment is taken. Choose a test token:",
        "tok_ok": "tok_ok: approved",
        "tok_offline": "tok_offline: approved offline",
        "tok_declined": "tok_declined: declined",
        "confirmed": "Thank you! Your order is confirmed.",
        "order": "Order {id}",
        "status": "Status",
        "status_paid": "Paid",
        "status_paid_offline": "Paid (offline)",
        "status_delivered": "Delivered",
        "status_cancelled": "Cancelled",
        "to_seat": "Crew will bring it to seat {seat}.",
        "back": "Back to the shop",
        "added": "Added to your basket.",
        "err_payment_declined": "The payment was declined. Choose another payment and try again.",
        "err_out_of_stock": "Sorry, not enough of an item is left. Please change your basket.",
        "err_restricted_item": "Please confirm your age for the age-restricted items.",
        "err_limit_exceeded": "This seat has reached the limit for an item on this flight.",
        "err_validation_error": "Please check your seat number and basket.",
        "err_form": "The page had expired. Please try again.",
        "err_retry": "The order was not placed. Please try again.",
    },
    "de": {
        "skip": "Zum Inhalt springen",
        "shop": "Bordshop",
        "flight": "Flug {number}: {origin} nach {destination}",
        "language": "Sprache",
        "currency": "Währung",
        "apply": "Übernehmen",
        "categories": "Kategorien",
        "all": "Alle",
        "add": "In den Warenkorb",
        "quantity": "Menge",
        "left": "Noch {count}",
        "sold_out": "Ausverkauft",
        "age_limit": "Ab {age} Jahren",
        "basket": "Warenkorb",
        "basket_empty": "Ihr Warenkorb ist leer.",
        "remove": "Entfernen",
        "update": "Ändern",
        "total": "Summe",
        "checkout": "Zur Kasse",
        "seat": "Sitzplatz",
        "seat_hint": "Reihe und Buchstabe, zum Beispiel 12C",
        "age_confirm": "Ich bestätige, dass ich mindestens {age} Jahre alt bin.",
        "payment": "Zahlung",
        "pay": "{total} bezahlen",
        "sandbox": "Sandbox: Es wird nichts wirklich bezahlt. Test-Token wählen:",
        "tok_ok": "tok_ok: genehmigt",
        "tok_offline": "tok_offline: offline genehmigt",
        "tok_declined": "tok_declined: abgelehnt",
        "confirmed": "Vielen Dank! Ihre Bestellung ist bestätigt.",
        "order": "Bestellung {id}",
        "status": "Status",
        "status_paid": "Bezahlt",
        "status_paid_offline": "Bezahlt (offline)",
        "status_delivered": "Geliefert",
        "status_cancelled": "Storniert",
        "to_seat": "Die Crew bringt sie an Platz {seat}.",
        "back": "Zurück zum Shop",
        "added": "In den Warenkorb gelegt.",
        "err_payment_declined": "Die Zahlung wurde abgelehnt. Bitte wählen Sie eine andere Zahlung.",
        "err_out_of_stock": "Leider ist ein Artikel nicht mehr in dieser Menge vorrätig.",
        "err_restricted_item": "Bitte bestätigen Sie Ihr Alter für die altersbeschränkten Artikel.",
        "err_limit_exceeded": "Dieser Platz hat die Höchstmenge für einen Artikel auf diesem Flug erreicht.",
        "err_validation_error": "Bitte prüfen Sie Sitzplatz und Warenkorb.",
        "err_form": "Die Seite war abgelaufen. Bitte versuchen Sie es noch einmal.",
        "err_retry": "Die Bestellung wurde nicht aufgegeben. Bitte versuchen Sie es noch einmal.",
    },
    "sv": {
        "skip": "Hoppa till innehållet",
        "shop": "Butik ombord",
        "flight": "Flyg {number}: {origin} till {destination}",
        "language": "Språk",
        "currency": "Valuta",
        "apply": "Använd",
        "categories": "Kategorier",
        "all": "Alla",
        "add": "Lägg i varukorgen",
        "quantity": "Antal",
        "left": "{count} kvar",
        "sold_out": "Slutsåld",
        "age_limit": "Från {age} år",
        "basket": "Varukorg",
        "basket_empty": "Din varukorg är tom.",
        "remove": "Ta bort",
        "update": "Ändra",
        "total": "Summa",
        "checkout": "Till kassan",
        "seat": "Platsnummer",
        "seat_hint": "Rad och bokstav, till exempel 12C",
        "age_confirm": "Jag intygar att jag är minst {age} år.",
        "payment": "Betalning",
        "pay": "Betala {total}",
        "sandbox": "Sandlåda: ingen riktig betalning görs. Välj en testtoken:",
        "tok_ok": "tok_ok: godkänd",
        "tok_offline": "tok_offline: godkänd offline",
        "tok_declined": "tok_declined: nekad",
        "confirmed": "Tack! Din beställning är bekräftad.",
        "order": "Beställning {id}",
        "status": "Status",
        "status_paid": "Betald",
        "status_paid_offline": "Betald (offline)",
        "status_delivered": "Levererad",
        "status_cancelled": "Avbruten",
        "to_seat": "Besättningen kommer med den till plats {seat}.",
        "back": "Tillbaka till butiken",
        "added": "Lagd i varukorgen.",
        "err_payment_declined": "Betalningen nekades. Välj en annan betalning och försök igen.",
        "err_out_of_stock": "Tyvärr finns inte tillräckligt kvar av en vara.",
        "err_restricted_item": "Bekräfta din ålder för de åldersbegränsade varorna.",
        "err_limit_exceeded": "Platsen har nått gränsen för en vara på den här flygningen.",
        "err_validation_error": "Kontrollera platsnummer och varukorg.",
        "err_form": "Sidan hade gått ut. Försök igen.",
        "err_retry": "Beställningen lades inte. Försök igen.",
    },
    "ja": {
        "skip": "本文へ移動",
        "shop": "機内ショップ",
        "flight": "{number}便: {origin} → {destination}",
        "language": "言語",
        "currency": "通貨",
        "apply": "適用",
        "categories": "カテゴリー",
        "all": "すべて",
        "add": "カートに入れる",
        "quantity": "数量",
        "left": "残り{count}点",
        "sold_out": "売り切れ",
        "age_limit": "{age}歳以上",
        "basket": "カート",
        "basket_empty": "カートは空です。",
        "remove": "削除",
        "update": "変更",
        "total": "合計",
        "checkout": "購入手続き",
        "seat": "座席番号",
        "seat_hint": "列と記号 (例: 12C)",
        "age_confirm": "私は{age}歳以上であることを確認します。",
        "payment": "お支払い",
        "pay": "{total}を支払う",
        "sandbox": "サンドボックス: 実際の支払いは行われません。テストトークンを選択:",
        "tok_ok": "tok_ok: 承認",
        "tok_offline": "tok_offline: オフライン承認",
        "tok_declined": "tok_declined: 拒否",
        "confirmed": "ありがとうございます。ご注文が確定しました。",
        "order": "注文 {id}",
        "status": "状態",
        "status_paid": "支払い済み",
        "status_paid_offline": "支払い済み (オフライン)",
        "status_delivered": "お届け済み",
        "status_cancelled": "キャンセル",
        "to_seat": "客室乗務員が座席 {seat} までお届けします。",
        "back": "ショップに戻る",
        "added": "カートに追加しました。",
        "err_payment_declined": "お支払いが拒否されました。別のお支払い方法をお試しください。",
        "err_out_of_stock": "申し訳ありません。在庫が不足している商品があります。",
        "err_restricted_item": "年齢制限のある商品について年齢をご確認ください。",
        "err_limit_exceeded": "この座席はこの便での購入上限に達しました。",
        "err_validation_error": "座席番号とカートをご確認ください。",
        "err_form": "ページの有効期限が切れました。もう一度お試しください。",
        "err_retry": "ご注文は完了していません。もう一度お試しください。",
    },
    "fr": {
        "skip": "Aller au contenu",
        "shop": "Boutique à bord",
        "flight": "Vol {number} : {origin} vers {destination}",
        "language": "Langue",
        "currency": "Devise",
        "apply": "Appliquer",
        "categories": "Catégories",
        "all": "Tout",
        "add": "Ajouter au panier",
        "quantity": "Quantité",
        "left": "Plus que {count}",
        "sold_out": "Épuisé",
        "age_limit": "Dès {age} ans",
        "basket": "Panier",
        "basket_empty": "Votre panier est vide.",
        "remove": "Retirer",
        "update": "Modifier",
        "total": "Total",
        "checkout": "Commander",
        "seat": "Numéro de siège",
        "seat_hint": "Rang et lettre, par exemple 12C",
        "age_confirm": "Je confirme avoir au moins {age} ans.",
        "payment": "Paiement",
        "pay": "Payer {total}",
        "sandbox": "Bac à sable : aucun paiement réel. Choisissez un jeton de test :",
        "tok_ok": "tok_ok : accepté",
        "tok_offline": "tok_offline : accepté hors ligne",
        "tok_declined": "tok_declined : refusé",
        "confirmed": "Merci ! Votre commande est confirmée.",
        "order": "Commande {id}",
        "status": "Statut",
        "status_paid": "Payée",
        "status_paid_offline": "Payée (hors ligne)",
        "status_delivered": "Livrée",
        "status_cancelled": "Annulée",
        "to_seat": "L'équipage l'apportera au siège {seat}.",
        "back": "Retour à la boutique",
        "added": "Ajouté au panier.",
        "err_payment_declined": "Le paiement a été refusé. Choisissez un autre paiement.",
        "err_out_of_stock": "Désolé, un article n'est plus disponible en cette quantité.",
        "err_restricted_item": "Veuillez confirmer votre âge pour les articles réservés aux adultes.",
        "err_limit_exceeded": "Ce siège a atteint la limite pour un article sur ce vol.",
        "err_validation_error": "Vérifiez votre numéro de siège et votre panier.",
        "err_form": "La page avait expiré. Veuillez réessayer.",
        "err_retry": "La commande n'a pas été passée. Veuillez réessayer.",
    },
}


def _base(locale: str) -> str:
    return locale.split("-")[0]


def translator(locale: str) -> Callable[..., str]:
    """`t(key, **values)` in the locale, else its base language, else English."""
    chosen = MESSAGES.get(locale) or MESSAGES.get(_base(locale)) or {}
    fallback = MESSAGES[FALLBACK]

    def t(key: str, **values: object) -> str:
        text = chosen.get(key) or fallback.get(key, key)
        return text.format(**values) if values else text

    return t


@lru_cache(maxsize=256)
def _babel(locale: str) -> Locale:
    try:
        return Locale.parse(locale, sep="-")
    except (ValueError, UnknownLocaleError):
        return Locale.parse(FALLBACK)


def language_name(locale: str) -> str:
    """The language's own name for itself ("Deutsch", "日本語")."""
    name = _babel(locale).get_display_name(locale.replace("-", "_")) or locale
    return name[:1].upper() + name[1:]


def money(amount: str, currency: str, locale: str) -> str:
    return format_currency(Decimal(amount), currency, locale=_babel(locale))


def error_text(locale: str, code: str) -> str:
    """What to tell the passenger about a refused order, by the problem's stable code."""
    key = f"err_{code}"
    return translator(locale)(key if key in MESSAGES[FALLBACK] else "err_retry")
