import { useQuery, useQueryClient } from '@tanstack/react-query';
import { App as AntApp } from 'antd';
import { createContext, type ReactNode, useContext, useEffect } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, api, get, setUnauthenticatedHandler, type WhoAmI } from './api';
import { errorText } from './components';
import { type Lang, rememberLang, userLang } from './i18n';

interface Auth {
  me: WhoAmI | null;
  loading: boolean;
  isAdmin: boolean;
  signOut: () => Promise<void>;
  setLang: (l: Lang) => void;
}

const AuthContext = createContext<Auth>(null as unknown as Auth);
export const useAuth = () => useContext(AuthContext);

export function AuthProvider({ children }: { children: ReactNode }) {
  const qc = useQueryClient();
  const { i18n } = useTranslation();
  const { message } = AntApp.useApp();
  const q = useQuery({
    queryKey: ['whoami'],
    queryFn: async () => {
      try {
        return await get<WhoAmI>('/auth/whoami');
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return null;
        throw e;
      }
    },
    staleTime: 60_000,
  });
  useEffect(() => {
    setUnauthenticatedHandler(() => {
      qc.setQueryData(['whoami'], null);
    });
  }, [qc]);
  const me = q.data ?? null;
  // A signed-in user's language, remembered on the server (any browser), wins over this
  // browser's; without one saved, the language in use (the browser's by default) stays.
  useEffect(() => {
    if (!me) return;
    const l = me.user.locale ?? userLang(me.user.id);
    if (l && l !== i18n.language) {
      rememberLang(l, me.user.id);
      void i18n.changeLanguage(l);
    }
  }, [me, i18n]);
  const value: Auth = {
    me,
    loading: q.isLoading,
    isAdmin: me?.user.role === 'platform-admin',
    async signOut() {
      await api('POST', '/auth/logout').catch(() => {});
      // Signed out first (observers of whoami see it at once), then nobody's data is kept.
      qc.setQueryData(['whoami'], null);
      qc.removeQueries({ predicate: (q) => q.queryKey[0] !== 'whoami' });
    },
    setLang(l) {
      rememberLang(l, me?.user.id);
      void i18n.changeLanguage(l);
      if (!me) return;
      // Saved for this user on the server, so it follows them to another browser.
      qc.setQueryData<WhoAmI | null>(['whoami'], (w) => (w ? { ...w, user: { ...w.user, locale: l } } : w));
      void api('PUT', '/users/me/preferences', { locale: l }).catch((e) => message.error(errorText(e), 6));
    },
  };
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}
