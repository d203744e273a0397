import { useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, type ReactNode, useContext, useEffect } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, api, get, setUnauthenticatedHandler, type WhoAmI } from './api';
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
  // A signed-in user's remembered language wins over the browser's.
  useEffect(() => {
    if (!me) return;
    const l = userLang(me.user.id);
    if (l && l !== i18n.language) void i18n.changeLanguage(l);
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
    },
  };
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}
