import { App as AntApp, ConfigProvider, Spin } from 'antd';
import enUS from 'antd/locale/en_US';
import zhCN from 'antd/locale/zh_CN';
import { useTranslation } from 'react-i18next';
import { Navigate, Route, Routes, useLocation } from 'react-router-dom';
import { AuthProvider, useAuth } from './auth';
import { Forbidden, NotFoundPage } from './components';
import { AppLayout } from './Layout';
import { AccessKeysPage } from './pages/AccessKeys';
import { AccountPage } from './pages/Account';
import { AggregatesPage } from './pages/admin/Aggregates';
import { AuditPage } from './pages/admin/Audit';
import { BillingAccountsPage, BillingSettingsPage } from './pages/admin/BillingAccounts';
import { ConsolidationPage } from './pages/admin/Consolidation';
import { FlavorsPage } from './pages/admin/Flavors';
import { HostsPage } from './pages/admin/Hosts';
import { MigrationsPage } from './pages/admin/Migrations';
import { PublicImagesPage } from './pages/admin/PublicImages';
import { RateCardsPage } from './pages/admin/RateCards';
import { RevenuePage } from './pages/admin/Revenue';
import { TenantsPage } from './pages/admin/Tenants';
import { UsersPage } from './pages/admin/Users';
import { ZonesPage } from './pages/admin/Zones';
import { BillingPage } from './pages/Billing';
import { BucketPage } from './pages/Bucket';
import { BudgetsPage, NotificationsPage } from './pages/Budgets';
import { BucketsPage } from './pages/Buckets';
import { ImagesPage } from './pages/Images';
import { InstancePage } from './pages/Instance';
import { InstancesPage } from './pages/Instances';
import { InvoicePage, InvoicesPage } from './pages/Invoices';
import { KeyPairsPage } from './pages/KeyPairs';
import { LoginPage } from './pages/Login';
import { OverviewPage } from './pages/Overview';
import { QueuePage } from './pages/Queue';
import { QueuesPage } from './pages/Queues';
import { ServerGroupsPage } from './pages/ServerGroups';
import { UsagePage } from './pages/Usage';

function Protected() {
  const { me, loading } = useAuth();
  const loc = useLocation();
  if (loading)
    return (
      <div style={{ padding: 48, textAlign: 'center' }}>
        <Spin size="large" />
      </div>
    );
  if (!me) return <Navigate to={`/login?next=${encodeURIComponent(loc.pathname + loc.search)}`} replace />;
  return <AppLayout />;
}

function AdminOnly({ children }: { children: JSX.Element }) {
  const { isAdmin } = useAuth();
  return isAdmin ? children : <Forbidden />;
}

export function App() {
  const { i18n } = useTranslation();
  return (
    <ConfigProvider locale={i18n.language === 'zh-CN' ? zhCN : enUS} theme={{ token: { colorPrimary: '#1677ff' } }}>
      <AntApp>
        <AuthProvider>
          <Routes>
            <Route path="/login" element={<LoginPage />} />
            <Route element={<Protected />}>
              <Route index element={<OverviewPage />} />
              <Route path="instances" element={<InstancesPage />} />
              <Route path="instances/:id" element={<InstancePage />} />
              <Route path="server-groups" element={<ServerGroupsPage />} />
              <Route path="key-pairs" element={<KeyPairsPage />} />
              <Route path="images" element={<ImagesPage />} />
              <Route path="buckets" element={<BucketsPage />} />
              <Route path="buckets/:name" element={<BucketPage />} />
              <Route path="queues" element={<QueuesPage />} />
              <Route path="queues/:name" element={<QueuePage />} />
              <Route path="access-keys" element={<AccessKeysPage />} />
              <Route path="usage" element={<UsagePage />} />
              <Route path="billing" element={<BillingPage />} />
              <Route path="billing/invoices" element={<InvoicesPage />} />
              <Route path="billing/invoices/:id" element={<InvoicePage />} />
              <Route path="billing/budgets" element={<BudgetsPage />} />
              <Route path="billing/notifications" element={<NotificationsPage />} />
              <Route path="account" element={<AccountPage />} />
              <Route path="admin/hosts" element={<AdminOnly><HostsPage /></AdminOnly>} />
              <Route path="admin/zones" element={<AdminOnly><ZonesPage /></AdminOnly>} />
              <Route path="admin/aggregates" element={<AdminOnly><AggregatesPage /></AdminOnly>} />
              <Route path="admin/migrations" element={<AdminOnly><MigrationsPage /></AdminOnly>} />
              <Route path="admin/consolidation" element={<AdminOnly><ConsolidationPage /></AdminOnly>} />
              <Route path="admin/tenants" element={<AdminOnly><TenantsPage /></AdminOnly>} />
              <Route path="admin/users" element={<AdminOnly><UsersPage /></AdminOnly>} />
              <Route path="admin/flavors" element={<AdminOnly><FlavorsPage /></AdminOnly>} />
              <Route path="admin/images" element={<AdminOnly><PublicImagesPage /></AdminOnly>} />
              <Route path="admin/rate-cards" element={<AdminOnly><RateCardsPage /></AdminOnly>} />
              <Route path="admin/revenue" element={<AdminOnly><RevenuePage /></AdminOnly>} />
              <Route path="admin/billing" element={<AdminOnly><BillingAccountsPage /></AdminOnly>} />
              <Route path="admin/billing-settings" element={<AdminOnly><BillingSettingsPage /></AdminOnly>} />
              <Route path="admin/audit" element={<AdminOnly><AuditPage /></AdminOnly>} />
              <Route path="*" element={<NotFoundPage />} />
            </Route>
          </Routes>
        </AuthProvider>
      </AntApp>
    </ConfigProvider>
  );
}
