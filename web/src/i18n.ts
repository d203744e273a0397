import i18n from 'i18next';
import { initReactI18next } from 'react-i18next';
import en from './locales/en.json';
import zhCN from './locales/zh-CN.json';

export type Lang = 'en' | 'zh-CN';
export const LANGS: { value: Lang; label: string }[] = [
  { value: 'zh-CN', label: '中文' },
  { value: 'en', label: 'English' },
];

const LAST = 'yunhai.lang';
const perUser = (userId: string) => `yunhai.lang.${userId}`;

/** The browser's preference: Chinese for any zh-*, English otherwise. */
export function browserLang(): Lang {
  const langs = navigator.languages?.length ? navigator.languages : [navigator.language];
  for (const l of langs) {
    if (/^zh\b/i.test(l)) return 'zh-CN';
    if (/^en\b/i.test(l)) return 'en';
  }
  return 'en';
}

const valid = (v: string | null): v is Lang => v === 'en' || v === 'zh-CN';

/** Before sign-in: the language last used on this browser, else the browser's. */
export function initialLang(): Lang {
  const last = localStorage.getItem(LAST);
  return valid(last) ? last : browserLang();
}

/** After sign-in: this user's remembered choice, if any. */
export function userLang(userId: string): Lang | null {
  const v = localStorage.getItem(perUser(userId));
  return valid(v) ? v : null;
}

export function rememberLang(lang: Lang, userId?: string) {
  localStorage.setItem(LAST, lang);
  if (userId) localStorage.setItem(perUser(userId), lang);
}

void i18n.use(initReactI18next).init({
  resources: { en: { translation: en }, 'zh-CN': { translation: zhCN } },
  lng: initialLang(),
  fallbackLng: false,
  interpolation: { escapeValue: false },
  returnNull: false,
});
document.documentElement.lang = i18n.language;
i18n.on('languageChanged', (l) => {
  document.documentElement.lang = l;
});

export default i18n;
