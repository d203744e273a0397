import {
  AppstoreOutlined,
  BankOutlined,
  BellOutlined,
  BlockOutlined,
  EnvironmentOutlined,
  FundProjectionScreenOutlined,
  SettingOutlined,
  AccountBookOutlined,
  AuditOutlined,
  CloudServerOutlined,
  ClusterOutlined,
  DashboardOutlined,
  DatabaseOutlined,
  DesktopOutlined,
  FileTextOutlined,
  FundOutlined,
  KeyOutlined,
  LineChartOutlined,
  LockOutlined,
  LogoutOutlined,
  MenuOutlined,
  MessageOutlined,
  PictureOutlined,
  ProfileOutlined,
  SwapOutlined,
  TeamOutlined,
  ThunderboltOutlined,
  UserOutlined,
} from '@ant-design/icons';
import { useQuery } from '@tanstack/react-query';
import { Badge, Button, Drawer, Dropdown, Grid, Layout, Menu, Select, Space, Tag, Tooltip } from 'antd';
import type { ItemType } from 'antd/es/menu/interface';
import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Outlet, useLocation, useNavigate } from 'react-router-dom';
import { useAuth } from './auth';
import { type Lang, LANGS } from './i18n';
import { notificationsQuery, SEEN_EVENT, unseenCount } from './pages/Budgets';

export function LanguageSwitch() {
  const { i18n, t } = useTranslation();
  const { setLang } = useAuth();
  return (
    <Select
      aria-label={t('layout.language')}
      data-testid="lang-switch"
      size="small"
      value={i18n.language as Lang}
      onChange={(l: Lang) => setLang(l)}
      options={LANGS}
      style={{ width: 100 }}
    />
  );
}

/** A bell with the number of billing notifications this user has not opened yet. */
function NotificationBell() {
  const { t } = useTranslation();
  const { me } = useAuth();
  const nav = useNavigate();
  const q = useQuery({ ...notificationsQuery, refetchInterval: 60_000, retry: false });
  const [, setSeen] = useState(0);
  useEffect(() => {
    const onSeen = () => setSeen((x) => x + 1);
    window.addEventListener(SEEN_EVENT, onSeen);
    return () => window.removeEventListener(SEEN_EVENT, onSeen);
  }, []);
  const n = me && q.data ? unseenCount(q.data.items, me.user.id) : 0;
  return (
    <Tooltip title={t('notifications.bell', { n })}>
      <Button
        type="text"
        aria-label={t('notifications.bell', { n })}
        data-testid="notification-bell"
        onClick={() => nav('/billing/notifications')}
        icon={
          <Badge count={n} size="small" overflowCount={99}>
            <BellOutlined style={{ fontSize: 18 }} />
          </Badge>
        }
      />
    </Tooltip>
  );
}

export function AppLayout() {
  const { t } = useTranslation();
  const { me, isAdmin, signOut } = useAuth();
  const nav = useNavigate();
  const loc = useLocation();
  const screens = Grid.useBreakpoint();
  const mobile = !screens.md;
  const [drawer, setDrawer] = useState(false);

  const items: ItemType[] = [
    { key: '/', icon: <DashboardOutlined />, label: t('nav.overview') },
    { key: '/instances', icon: <DesktopOutlined />, label: t('nav.instances') },
    { key: '/server-groups', icon: <BlockOutlined />, label: t('nav.serverGroups') },
    { key: '/key-pairs', icon: <LockOutlined />, label: t('nav.keyPairs') },
    { key: '/images', icon: <PictureOutlined />, label: t('nav.images') },
    { key: '/buckets', icon: <DatabaseOutlined />, label: t('nav.buckets') },
    { key: '/queues', icon: <MessageOutlined />, label: t('nav.queues') },
    { key: '/access-keys', icon: <KeyOutlined />, label: t('nav.accessKeys') },
    { key: '/usage', icon: <LineChartOutlined />, label: t('nav.usage') },
    { key: '/billing', icon: <AccountBookOutlined />, label: t('nav.costs') },
    { key: '/billing/invoices', icon: <FileTextOutlined />, label: t('nav.invoices') },
    { key: '/billing/budgets', icon: <FundProjectionScreenOutlined />, label: t('nav.budgets') },
    { key: '/billing/notifications', icon: <BellOutlined />, label: t('nav.notifications') },
  ];
  if (isAdmin)
    items.push({
      key: 'admin',
      type: 'group',
      label: t('nav.admin'),
      children: [
        { key: '/admin/hosts', icon: <CloudServerOutlined />, label: t('nav.hosts') },
        { key: '/admin/zones', icon: <EnvironmentOutlined />, label: t('nav.zones') },
        { key: '/admin/aggregates', icon: <ClusterOutlined />, label: t('nav.aggregates') },
        { key: '/admin/migrations', icon: <SwapOutlined />, label: t('nav.migrations') },
        { key: '/admin/consolidation', icon: <ThunderboltOutlined />, label: t('nav.consolidation') },
        { key: '/admin/tenants', icon: <TeamOutlined />, label: t('nav.tenants') },
        { key: '/admin/users', icon: <UserOutlined />, label: t('nav.users') },
        { key: '/admin/flavors', icon: <AppstoreOutlined />, label: t('nav.flavors') },
        { key: '/admin/images', icon: <PictureOutlined />, label: t('nav.publicImages') },
        { key: '/admin/rate-cards', icon: <ProfileOutlined />, label: t('nav.rateCards') },
        { key: '/admin/revenue', icon: <FundOutlined />, label: t('nav.revenue') },
        { key: '/admin/billing', icon: <BankOutlined />, label: t('nav.billingAccounts') },
        { key: '/admin/billing-settings', icon: <SettingOutlined />, label: t('nav.billingSettings') },
        { key: '/admin/audit', icon: <AuditOutlined />, label: t('nav.audit') },
      ],
    });
  const flat = items.flatMap((i) => (i && 'children' in i && i.children ? i.children : [i]));
  const selected =
    flat
      .map((i) => String(i?.key))
      .filter((k) => k === '/' ? loc.pathname === '/' : loc.pathname.startsWith(k))
      .sort((a, b) => b.length - a.length)[0] ?? '/';

  const menu = (
    <Menu
      theme="dark"
      mode="inline"
      selectedKeys={[selected]}
      items={items}
      onClick={(e) => {
        nav(e.key);
        setDrawer(false);
      }}
    />
  );

  return (
    <Layout style={{ minHeight: '100vh' }}>
      {mobile ? (
        <Drawer
          placement="left"
          open={drawer}
          onClose={() => setDrawer(false)}
          width={240}
          styles={{ body: { padding: 0, background: '#001529' }, header: { display: 'none' } }}
        >
          <div className="yh-logo">{t('app.name')}</div>
          {menu}
        </Drawer>
      ) : (
        <Layout.Sider width={220} breakpoint="lg" collapsible style={{ position: 'sticky', top: 0, height: '100vh', overflow: 'auto' }}>
          <div className="yh-logo">{t('app.name')}</div>
          <nav aria-label={t('layout.mainMenu')}>{menu}</nav>
        </Layout.Sider>
      )}
      <Layout>
        <Layout.Header className="yh-header">
          {mobile ? (
            <Button
              icon={<MenuOutlined />}
              aria-label={t('layout.openMenu')}
              onClick={() => setDrawer(true)}
              type="text"
            />
          ) : null}
          <div className="yh-spacer" />
          <NotificationBell />
          <LanguageSwitch />
          <Dropdown
            trigger={['click']}
            menu={{
              items: [
                { key: 'account', icon: <UserOutlined />, label: t('nav.account') },
                { key: 'logout', icon: <LogoutOutlined />, label: t('auth.signOut') },
              ],
              onClick: async (e) => {
                if (e.key === 'account') nav('/account');
                else {
                  await signOut();
                  nav('/login', { replace: true });
                }
              },
            }}
          >
            <Button type="text" data-testid="user-menu" aria-label={t('layout.userMenu')}>
              <Space>
                <UserOutlined />
                {mobile ? null : `${me?.user.name}@${me?.tenant.name}`}
                {isAdmin && !mobile ? <Tag color="gold">{t('roles.platform-admin')}</Tag> : null}
              </Space>
            </Button>
          </Dropdown>
        </Layout.Header>
        <Layout.Content className="yh-content">
          <main>
            <Outlet />
          </main>
        </Layout.Content>
      </Layout>
    </Layout>
  );
}
