import { useQueryClient } from '@tanstack/react-query';
import { Alert, Button, Card, Form, Input, Space, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Navigate, useNavigate, useSearchParams } from 'react-router-dom';
import { api, type WhoAmI } from '../api';
import { useAuth } from '../auth';
import { errorText } from '../components';
import { LanguageSwitch } from '../Layout';

export function LoginPage() {
  const { t } = useTranslation();
  const { me } = useAuth();
  const qc = useQueryClient();
  const nav = useNavigate();
  const [params] = useSearchParams();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const next = params.get('next');
  const target = next?.startsWith('/') && !next.startsWith('//') ? next : '/';
  if (me) return <Navigate to={target} replace />;

  const onFinish = async (v: { username: string; password: string; tenant?: string }) => {
    setBusy(true);
    setError(null);
    try {
      await api('POST', '/auth/login', {
        username: v.username,
        password: v.password,
        ...(v.tenant ? { tenant: v.tenant } : {}),
      });
      const who = await api<WhoAmI>('GET', '/auth/whoami');
      qc.setQueryData(['whoami'], who);
      nav(target, { replace: true });
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="yh-login">
      <Card>
        <Space direction="vertical" style={{ width: '100%' }}>
          <div style={{ display: 'flex', alignItems: 'center' }}>
            <Typography.Title level={3} style={{ margin: 0, flex: 1 }}>
              {t('app.name')}
            </Typography.Title>
            <LanguageSwitch />
          </div>
          <Typography.Text type="secondary">{t('auth.welcome')}</Typography.Text>
          {error ? <Alert type="error" showIcon message={error} role="alert" /> : null}
          <Form layout="vertical" onFinish={onFinish} requiredMark={false}>
            <Form.Item
              label={t('auth.username')}
              name="username"
              extra={t('auth.usernameHint')}
              rules={[{ required: true, message: t('validation.required') }]}
            >
              <Input autoFocus autoComplete="username" />
            </Form.Item>
            <Form.Item label={t('auth.tenant')} name="tenant">
              <Input autoComplete="organization" placeholder={t('auth.tenantPlaceholder')} />
            </Form.Item>
            <Form.Item
              label={t('auth.password')}
              name="password"
              rules={[{ required: true, message: t('validation.required') }]}
            >
              <Input.Password autoComplete="current-password" />
            </Form.Item>
            <Button type="primary" htmlType="submit" block loading={busy}>
              {t('auth.signIn')}
            </Button>
          </Form>
        </Space>
      </Card>
    </div>
  );
}
